//! The gradient checker on fuzzed layers, inputs and configurations.
#![no_main]

use gradverify_fuzz::check::Case;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| case.run());
