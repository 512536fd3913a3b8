//! MHA's INI dialect, as Config::Tiny reads it: `[section]`, `key=value`, whole-line `#` or
//! `;` comments, surrounding quotes stripped from values (MHA does that after parsing).
//! Keys outside any section are an error here (MHA would silently ignore them).
use super::MhaError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// Parses `text` (named `file` in errors) into its sections, in file order.
pub fn parse(file: &str, text: &str) -> Result<Vec<Section>, MhaError> {
    let err = |line: usize, message: String| MhaError::Line {
        file: file.to_string(),
        line,
        message,
    };
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(line, format!("malformed section header {trimmed:?}")));
            };
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(err(line, "empty section name".into()));
            }
            if sections.iter().any(|s| s.name == name) {
                return Err(err(line, format!("section [{name}] appears twice")));
            }
            sections.push(Section {
                name,
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(err(line, format!("expected key=value, got {trimmed:?}")));
        };
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(err(line, "empty parameter name".into()));
        }
        let value = strip_quotes(value.trim());
        // MHA keeps an inline comment as part of the value (mha4mysql-manager #137): a script
        // path or a password would silently gain the comment, so refuse instead.
        if value.contains(" #") || value.contains("\t#") || value.contains(" //") {
            return Err(err(
                line,
                format!(
                    "`{key}`: inline comments are not allowed (MHA would read them as part of the value); move the comment to its own line"
                ),
            ));
        }
        let Some(section) = sections.last_mut() else {
            return Err(err(line, format!("`{key}` appears before any [section]")));
        };
        if section.entries.iter().any(|e| e.key == key) {
            return Err(err(
                line,
                format!("`{key}` is set twice in [{}]", section.name),
            ));
        }
        section.entries.push(Entry {
            key,
            value: value.to_string(),
            line,
        });
    }
    Ok(sections)
}

fn strip_quotes(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_quotes() {
        let text = "# c\n[server default]\nuser=root\nshutdown_script=\"\"\n\n[server1]\n hostname = 10.0.0.1 \n";
        let s = parse("a.cnf", text).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "server default");
        assert_eq!(s[0].entries[1].value, "");
        assert_eq!(s[1].entries[0].value, "10.0.0.1");
        assert_eq!(s[1].entries[0].line, 7);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = [
            ("[server1]\nhostname\n", 2),
            ("user=root\n", 1),
            ("[server1\n", 1),
            ("[server1]\ncandidate_master=1 # yes\n", 2),
            ("[server1]\nport=1\nport=2\n", 3),
            ("[a]\n[a]\n", 2),
        ];
        for (text, want) in bad {
            match parse("a.cnf", text) {
                Err(MhaError::Line { line, .. }) => assert_eq!(line, want, "{text:?}"),
                other => panic!("{text:?}: expected a line error, got {other:?}"),
            }
        }
    }
}
