//! `tally case STYLE [TEXT…]`: the case converter for people preparing data.

use std::io::BufRead;

use anyhow::Result;
use clap::Args;
use tally_core::case::IdentifierCase;

/// Arguments of `tally case`.
#[derive(Debug, Args)]
pub struct CaseArgs {
    /// snake_case, camelCase, kebab-case, lower, upper or none.
    pub style: IdentifierCase,
    /// Texts to convert; without any, each line of standard input is converted.
    pub texts: Vec<String>,
}

/// Prints each text converted, one per line.
pub fn run(args: &CaseArgs) -> Result<()> {
    if args.texts.is_empty() {
        for line in std::io::stdin().lock().lines() {
            println!("{}", args.style.apply(&line?));
        }
    } else {
        for text in &args.texts {
            println!("{}", args.style.apply(text));
        }
    }
    Ok(())
}
