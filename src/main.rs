//! `gradverify`: verify the hand-written backpropagation, then run the
//! reference MNIST training. See `gradverify --help`.

use clap::Parser;
use gradverify::cli::{Cli, run};
use std::process::ExitCode;

/// The verification gate in front of every training run: returns the table
/// when every check passes, [`gradverify::Error::VerificationFailed`] when
/// one fails.
fn verification() -> Result<String, gradverify::Error> {
    gradverify::check::suite::verify()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.train_args(), verification) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
