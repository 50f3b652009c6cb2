//! Arbitrary bytes, gzip streams and absurd headers into the IDX parsers.
//! Run with `-rss_limit_mb=512 -malloc_limit_mb=256`.
#![no_main]

use gradverify_fuzz::idx::Case;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| case.run());
