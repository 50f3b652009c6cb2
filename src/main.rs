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

/// Keeps freed memory in the process (glibc only). The checks and the
/// generic training path allocate and free multi-megabyte arrays on every
/// call; by default glibc serves those from fresh `mmap`s and gives freed
/// heap tops back to the kernel, so each call pays page faults and zeroing
/// again. With the large-allocation threshold at its maximum (32 MiB) and
/// trimming only past 256 MiB, a digits ConvNet epoch took 4.7–5.0 s
/// instead of 7.1–7.2 s (GLIBC_TUNABLES, two runs each).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes the allocator's parameters; it runs
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    match run(&cli.train_args(), verification) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
