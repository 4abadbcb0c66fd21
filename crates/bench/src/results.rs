//! Figures for `scripts/bench.sh`: appended to a file as `NAME=value` lines
//! that the script sources, so that its summary table uses the numbers the
//! runs measured and nothing typed by hand.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Appends `prefix_name=value` for each pair to `path`, when there is a path.
pub fn emit(path: Option<&Path>, prefix: &str, pairs: &[(&str, String)]) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    for (name, value) in pairs {
        let key = format!("{prefix}_{name}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>();
        // Values are numbers or plain words; quote anything else for the shell.
        let plain = value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if plain {
            writeln!(file, "{key}={value}")?;
        } else {
            writeln!(file, "{key}='{}'", value.replace('\'', ""))?;
        }
    }
    Ok(())
}
