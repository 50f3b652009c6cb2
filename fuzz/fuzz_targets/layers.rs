//! Every layer's forward/backward on hostile shapes, values and layouts.
#![no_main]

use gradverify_fuzz::layers::Case;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| case.run());
