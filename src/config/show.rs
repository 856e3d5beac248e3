//! The effective configuration as a file that `--config` accepts back (`--check-config`):
//! every key through `schema`, in its order, then one `[[input]]` table per input that says
//! more than its address, then one `[[output]]` table per output.

use std::fmt;

use super::Config;
use super::schema::{INPUT_KEYS, KEYS, Key, LIMIT_KEYS, OUTPUT_KEYS};

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(p) => writeln!(f, "# effective configuration (file {})", p.display())?,
            None => writeln!(f, "# effective configuration (built-in defaults)")?,
        }
        keys(f, KEYS, self)?;
        keys(f, LIMIT_KEYS, &self.limits)?;
        // Tables last: TOML puts every key after a table header into that table.
        for input in self.inputs.iter().filter(|i| !i.is_plain(&self.limits)) {
            writeln!(f, "\n[[input]]")?;
            keys(f, INPUT_KEYS, input)?;
            // Its own limits: those that differ from the top-level ones.
            for key in LIMIT_KEYS {
                let own = (key.show)(&input.limits);
                if own != (key.show)(&self.limits)
                    && let Some(value) = own
                {
                    writeln!(f, "{} = {value}", key.name)?;
                }
            }
        }
        for output in &self.outputs {
            writeln!(f, "\n[[output]]")?;
            keys(f, OUTPUT_KEYS, output)?;
        }
        Ok(())
    }
}

/// `name = value` for each key of `keys` that `of` sets.
fn keys<T>(f: &mut fmt::Formatter<'_>, keys: &[Key<T>], of: &T) -> fmt::Result {
    for key in keys {
        if let Some(value) = (key.show)(of) {
            writeln!(f, "{} = {value}", key.name)?;
        }
    }
    Ok(())
}
