//! Any bytes: the hand-written decoder and ciborium must give the same answer, both `Err` or
//! both `Ok` with the same rows (compared as ciborium's bytes, so order and NaN payloads count),
//! and the rows must re-encode to ciborium's bytes. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vlive::__private::codec::{decode, encode, reference};

fuzz_target!(|bytes: &[u8]| {
    match (decode(bytes), reference::decode(bytes)) {
        (Ok(ours), Ok(theirs)) => {
            let theirs = reference::encode(&theirs).expect("a decoded timestamp is in range");
            assert_eq!(
                reference::encode(&ours).unwrap(),
                theirs,
                "decoded differently"
            );
            assert_eq!(encode(&ours).unwrap(), theirs, "re-encoded differently");
        }
        (Err(_), Err(_)) => {}
        (ours, theirs) => panic!("disagree: ours {ours:?}, ciborium {theirs:?}"),
    }
});
