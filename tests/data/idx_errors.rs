//! Every way an IDX file can be broken gives a typed error naming the file.

use super::alloc::largest_allocation;
use super::{images_idx, labels_idx, write};
use gradverify::Error;
use gradverify::data::idx::gzip;
use gradverify::data::{DataError, Images, parse_images, parse_labels, read_images, read_labels};

fn data_err(e: Error) -> DataError {
    match e {
        Error::Data(d) => d,
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope-idx3-ubyte");
    let e = data_err(read_images(&p).unwrap_err());
    assert!(
        matches!(&e, DataError::Io { path, .. } if *path == p),
        "{e:?}"
    );
    assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
    assert!(read_labels(&p).is_err());
}

#[test]
fn wrong_magic_shows_the_bytes_found_and_the_magic_expected() {
    let e = data_err(parse_images(&labels_idx(1, &[3]), "lbl-as-img").unwrap_err());
    assert!(
        matches!(
            e,
            DataError::BadMagic {
                found: [0, 0, 8, 1],
                expected: 0x803,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "lbl-as-img: wrong magic number 0x00000801, expected 0x00000803 (IDX u8 images, 3 dimensions)"
    );
    let e = parse_labels(b"PK\x03\x04rest", "zip").unwrap_err();
    assert!(
        e.to_string()
            .contains("wrong magic number 0x504b0304, expected 0x00000801"),
        "{e}"
    );
}

#[test]
fn truncated_header_raw_and_gzip() {
    for bytes in [vec![0, 0, 8], images_idx(1, 2, 3, &[])[..10].to_vec()] {
        for input in [bytes.clone(), gzip(&bytes)] {
            let e = data_err(parse_images(&input, "short").unwrap_err());
            assert!(
                matches!(e, DataError::TruncatedHeader { got, expected: 16, .. } if got == bytes.len()),
                "{e:?}"
            );
        }
    }
    let e = parse_labels(&[], "empty").unwrap_err();
    assert_eq!(
        e.to_string(),
        "empty: truncated header: 0 byte(s), expected 8"
    );
}

#[test]
fn truncated_payload_reports_got_and_expected_bytes() {
    let raw = images_idx(2, 2, 2, &[1; 7]);
    for input in [raw.clone(), gzip(&raw)] {
        let e = data_err(parse_images(&input, "t.idx").unwrap_err());
        assert!(
            matches!(
                e,
                DataError::Truncated {
                    got: 7,
                    expected: 8,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "t.idx: truncated payload: 7 byte(s) after the header, expected 8 (dimensions [2, 2, 2])"
        );
    }
}

#[test]
fn trailing_bytes_are_rejected_raw_exactly_and_gzip() {
    let raw = labels_idx(2, &[1, 2, 3, 4, 5]);
    let e = data_err(parse_labels(&raw, "l").unwrap_err());
    assert!(
        matches!(
            e,
            DataError::TrailingBytes {
                extra: 3,
                at_least: false,
                expected: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let e = data_err(parse_labels(&gzip(&raw), "l.gz").unwrap_err());
    assert!(
        matches!(
            e,
            DataError::TrailingBytes {
                extra: 3,
                expected: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("3 trailing byte(s) after the 2-byte payload"),
        "{e}"
    );
}

#[test]
fn label_above_nine_names_position_and_value() {
    let e = data_err(parse_labels(&labels_idx(4, &[0, 9, 10, 200]), "lbl").unwrap_err());
    assert!(
        matches!(
            e,
            DataError::BadLabel {
                index: 2,
                value: 10,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "lbl: label 10 at position 2 is out of range, expected 0..=9"
    );
}

#[test]
fn corrupt_gzip_is_reported_as_such() {
    let good = gzip(&labels_idx(3, &[1, 2, 3]));
    // A flipped CRC byte (the 8-byte trailer is CRC32 then size).
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    // A stream cut short, and garbage after the gzip magic.
    let cut = good[..good.len() - 6].to_vec();
    let garbage = vec![0x1f, 0x8b, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1, 2, 3];
    for (what, input) in [("crc", bad_crc), ("cut", cut), ("garbage", garbage)] {
        let e = data_err(parse_labels(&input, what).unwrap_err());
        assert!(
            matches!(&e, DataError::CorruptGzip { file, .. } if file == what),
            "{what}: {e:?}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("{what}: corrupt gzip data: ")),
            "{e}"
        );
    }
    // The intact stream decodes.
    assert_eq!(parse_labels(&good, "good").unwrap(), vec![1, 2, 3]);
}

#[test]
fn absurd_dimensions_are_rejected_without_allocating() {
    // u32::MAX^3 overflows 64 bits.
    let e =
        data_err(parse_images(&images_idx(u32::MAX, u32::MAX, u32::MAX, &[]), "x").unwrap_err());
    assert!(matches!(e, DataError::BadDims { .. }), "{e:?}");
    assert!(e.to_string().contains("overflows"), "{e}");
    // Zero-sized images make no sense.
    let e = data_err(parse_images(&images_idx(1, 0, 28, &[]), "x").unwrap_err());
    assert!(
        e.to_string().contains("at least one row and one column"),
        "{e}"
    );
}

#[test]
fn a_header_claiming_four_billion_images_costs_no_big_allocation() {
    // 2^32 - 1 images of 28x28 (3.4 TB) declared in a 20-byte file.
    let raw = images_idx(u32::MAX, 28, 28, &[7, 7, 7, 7]);
    assert_eq!(raw.len(), 20);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "huge-idx3-ubyte", &raw);
    let gz = gzip(&raw);
    let gz_path = write(dir.path(), "huge-idx3-ubyte.gz", &gz);
    let expected = u64::from(u32::MAX) * 784;
    type Case<'a> = Box<dyn Fn() -> gradverify::Result<Images> + 'a>;
    let cases: [(&str, Case); 4] = [
        ("raw bytes", Box::new(|| parse_images(&raw, "raw"))),
        ("gzip bytes", Box::new(|| parse_images(&gz, "gz"))),
        ("raw file", Box::new(|| read_images(&path))),
        ("gzip file", Box::new(|| read_images(&gz_path))),
    ];
    for (what, case) in cases {
        let (res, largest) = largest_allocation(case);
        let e = data_err(res.unwrap_err());
        assert!(
            matches!(e, DataError::Truncated { got: 4, expected: x, .. } if x == expected),
            "{what}: {e:?}"
        );
        // The gzip decoder's own state is ~64 KiB; 1032 * |input| caps the rest.
        assert!(
            largest < 200_000,
            "{what}: largest allocation {largest} bytes"
        );
    }
}

#[test]
fn a_gzip_bomb_is_cut_off_at_the_declared_length() {
    // Declares 10 labels, but decompresses to 50 MB of zeros (about 50 KB
    // compressed): the reader stops one byte past the payload.
    let mut raw = labels_idx(10, &[]);
    raw.resize(50_000_000, 0);
    let bomb = gzip(&raw);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let (res, largest) = largest_allocation(|| parse_labels(&bomb, "bomb.gz"));
    let e = data_err(res.unwrap_err());
    assert!(
        matches!(e, DataError::TrailingBytes { at_least: true, extra: x, expected: 10, .. } if x > 1_000_000),
        "{e:?}"
    );
    assert!(e.to_string().contains("at least"), "{e}");
    assert!(largest < 1_000_000, "largest allocation {largest} bytes");
}

#[test]
fn an_empty_set_is_valid() {
    let imgs = parse_images(&images_idx(0, 28, 28, &[]), "empty").unwrap();
    assert_eq!((imgs.len(), imgs.features()), (0, 784));
    assert!(
        parse_labels(&labels_idx(0, &[]), "empty")
            .unwrap()
            .is_empty()
    );
}
