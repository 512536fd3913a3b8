//! Operator commands: dump, serve, bench.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;

use super::{CliError, CliResult};
use crate::tools::bench::{self, BenchResult};

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Binlog or relay-log files, read as one stream in this order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Do not verify CRC32.
    #[arg(long)]
    pub no_verify: bool,
}

pub fn dump(a: DumpArgs) -> CliResult {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_err = None;
    let result = crate::tools::dump::dump(&a.files, !a.no_verify, |line| {
        let r = if a.json {
            serde_json::to_string(line)
                .map_err(std::io::Error::other)
                .and_then(|s| writeln!(out, "{s}"))
        } else {
            writeln!(out, "{}", line.text())
        };
        if let Err(e) = r {
            write_err.get_or_insert(e);
        }
    });
    let _ = out.flush();
    if let Some(e) = write_err
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(anyhow!(e).into());
    }
    result.map_err(|e| CliError::from(anyhow!(e)))?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long)]
    pub config: PathBuf,
}

pub async fn serve(a: ServeArgs) -> CliResult {
    let cfg = crate::agent::AgentConfig::load(&a.config).map_err(CliError::usage)?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::agent::serve(cfg, shutdown).await?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Relay-log files (or a directory + --base) to measure.
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value = "relay")]
    pub base: String,
    /// Binlog files for the `save` item (directory + base); defaults to the relay files.
    #[arg(long)]
    pub binlog_dir: Option<PathBuf>,
    #[arg(long, default_value = "binlog")]
    pub binlog_base: String,
    /// Scratch directory for outputs.
    #[arg(long, default_value = "/tmp/rmha-node/bench-out")]
    pub workdir: PathBuf,
    /// Run one item in this process (used by the parent).
    #[arg(long)]
    pub item: Option<String>,
    #[arg(long)]
    pub json: bool,
}

const ITEMS: [&str; 7] = [
    "cat",
    "cp",
    "scan",
    "search",
    "generate",
    "generate-nocrc",
    "save",
];

pub fn bench(a: BenchArgs) -> CliResult {
    let files = crate::binlog::relay::list_numbered(&a.dir, &a.base)
        .with_context(|| format!("list {}", a.dir.display()))?;
    if files.is_empty() {
        return Err(CliError::usage(anyhow!(
            "no {}.NNNNNN files in {}",
            a.base,
            a.dir.display()
        )));
    }
    std::fs::create_dir_all(&a.workdir)
        .with_context(|| format!("create {}", a.workdir.display()))?;
    if let Some(item) = &a.item {
        let r = run_item(item, &a, &files)?;
        println!(
            "{}",
            serde_json::to_string(&r).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    // Warm the page cache for every file measured, so each item sees the same cache state.
    let mut warm: Vec<PathBuf> = files.clone();
    if let Some(d) = &a.binlog_dir {
        warm.extend(crate::binlog::relay::list_numbered(d, &a.binlog_base).unwrap_or_default());
    }
    for f in &warm {
        let mut file = std::fs::File::open(f).with_context(|| format!("open {}", f.display()))?;
        std::io::copy(&mut file, &mut std::io::sink())
            .with_context(|| format!("read {}", f.display()))?;
    }
    let exe = std::env::current_exe().context("current_exe")?;
    let mut results = Vec::new();
    for item in ITEMS {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("bench")
            .arg("--dir")
            .arg(&a.dir)
            .arg("--base")
            .arg(&a.base)
            .arg("--workdir")
            .arg(&a.workdir)
            .arg("--binlog-base")
            .arg(&a.binlog_base)
            .arg("--item")
            .arg(item);
        if let Some(d) = &a.binlog_dir {
            cmd.arg("--binlog-dir").arg(d);
        }
        let out = cmd.output().context("run bench child")?;
        if !out.status.success() {
            return Err(anyhow!(
                "bench item {item} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let r: BenchResult = serde_json::from_slice(&out.stdout).context("bench child output")?;
        if !a.json {
            println!(
                "{:<18} {:>7.2} GiB {:>8.3} s {:>9.0} MB/s {:>11.0} events/s  peak RSS {:>7} KiB  {}",
                r.item,
                r.bytes as f64 / (1u64 << 30) as f64,
                r.seconds,
                r.mb_per_s,
                r.events_per_s,
                r.peak_rss_kib,
                r.note
            );
        }
        results.push(r);
    }
    if a.json {
        super::print_json(&results)?;
    }
    Ok(())
}

fn run_item(item: &str, a: &BenchArgs, files: &[PathBuf]) -> Result<BenchResult, CliError> {
    let out = a.workdir.join("bench-output.binlog");
    let r = match item {
        "cat" | "cp" => bench::external(item, files, &a.workdir)?,
        "scan" => bench::scan(files).map_err(anyhow::Error::from)?,
        "search" => bench::search(files)?,
        "generate" => bench::generate("generate+crc", files, &out, true)?,
        "generate-nocrc" => bench::generate("generate", files, &out, false)?,
        "save" => {
            let bfiles = match &a.binlog_dir {
                Some(d) => crate::binlog::relay::list_numbered(d, &a.binlog_base)
                    .with_context(|| format!("list {}", d.display()))?,
                None => files.to_vec(),
            };
            bench::generate("save+crc", &bfiles, &out, true)?
        }
        other => return Err(CliError::usage(anyhow!("unknown bench item {other}"))),
    };
    Ok(r)
}
