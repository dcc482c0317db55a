//! CSV and NPY readers against real files, corrupt files and arbitrary bytes.

use fm_data::{DataSource, Points, parse_csv, parse_npy, read_csv, read_npy, write_csv, write_npy};
use proptest::prelude::*;

fn points() -> impl Strategy<Value = Points> {
    (1usize..5, 1usize..40).prop_flat_map(|(dim, n)| {
        prop::collection::vec(-1e6f32..1e6, dim * n).prop_map(move |values| Points { values, dim })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn csv_round_trips(p in points()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        write_csv(&path, &p).unwrap();
        prop_assert_eq!(read_csv(&path).unwrap(), p);
    }

    #[test]
    fn npy_round_trips(p in points()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.npy");
        write_npy(&path, &p.values, &[p.len(), p.dim]).unwrap();
        prop_assert_eq!(read_npy(&path).unwrap(), p);
    }

    /// Arbitrary input never panics: it parses or it says why not.
    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_npy(&bytes);
        let _ = parse_csv(&String::from_utf8_lossy(&bytes));
    }

    /// A valid file cut anywhere is rejected, not misread.
    #[test]
    fn truncated_npy_is_rejected(p in points(), cut in 1usize..64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.npy");
        write_npy(&path, &p.values, &[p.len(), p.dim]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let cut = cut.min(bytes.len());
        prop_assert!(parse_npy(&bytes[..bytes.len() - cut]).is_err());
    }
}

fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn npy_reads_f64_and_fortran_order() {
    let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let c = parse_npy(&npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }",
        &data,
    ))
    .unwrap();
    assert_eq!(
        c,
        Points {
            values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            dim: 2
        }
    );
    // Column-major storage of the same 3 x 2 array [[1, 4], [2, 5], [3, 6]].
    let f = parse_npy(&npy_with_header(
        "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }",
        &data,
    ))
    .unwrap();
    assert_eq!(
        f,
        Points {
            values: vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0],
            dim: 2
        }
    );
}

#[test]
fn corrupt_npy_errors_name_the_field() {
    let four: Vec<u8> = [1.0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let cases = [
        (
            "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }",
            &four[..],
            "descr",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
            &four[..],
            "2-D",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 1), }",
            &four[..],
            "2-D",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
            &four[..],
            "bytes of data",
        ),
        (
            "{'descr': '<f4', 'shape': (2, 2), }",
            &four[..],
            "fortran_order",
        ),
        (
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2), }",
            &four[..],
            "fortran_order",
        ),
    ];
    for (header, data, want) in cases {
        let err = parse_npy(&npy_with_header(header, data)).unwrap_err();
        assert!(err.contains(want), "{header}: {err}");
    }
    let nan: Vec<u8> = [1.0f32, f32::NAN, 0.0, 0.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let err = parse_npy(&npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
        &nan,
    ))
    .unwrap_err();
    assert!(err.contains("row 0, column 1"), "{err}");
    assert!(
        parse_npy(b"PK\x03\x04 not numpy")
            .unwrap_err()
            .contains("magic")
    );
}

#[test]
fn corrupt_csv_errors_name_line_and_column() {
    assert_eq!(
        parse_csv("x,y\n1,2\n# comment\n\n3,4\n").unwrap(),
        Points {
            values: vec![1.0, 2.0, 3.0, 4.0],
            dim: 2
        }
    );
    for (text, want) in [
        ("1,2\n3,abc\n", "line 2, column 2: 'abc' is not a number"),
        ("1,2\n3\n", "line 2: 1 values, but earlier rows have 2"),
        (
            "1,2\nNaN,4\n",
            "line 2, column 1: 'NaN' is not a finite 32-bit float",
        ),
        ("1,2\n3,inf\n", "not a finite 32-bit float"),
        // Finite in f64, infinite in f32.
        (
            "1,2\n3,1e300\n",
            "line 2, column 2: '1e300' is not a finite 32-bit float",
        ),
        ("1,2\n-1e39,0\n", "line 2, column 1"),
        // Quoted numbers and other separators: the line that shows it, not "no data rows".
        (
            "x,y\n\"1.5\",\"2\"\n",
            "line 2, column 1: '\"1.5\"' is not a number (values are plain numbers",
        ),
        (
            "1;2\n3;4\n",
            "line 2, column 1: '3;4' is not a number (values",
        ),
        ("x,y\n", "no data rows"),
        ("", "no data rows"),
    ] {
        assert!(
            parse_csv(text).unwrap_err().contains(want),
            "{text:?}: {}",
            parse_csv(text).unwrap_err()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "1,2\n3,x\n").unwrap();
    let err = DataSource::parse(&format!("file:{}", path.display()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.csv") && err.contains("line 2, column 2"),
        "{err}"
    );
}

#[test]
fn streamed_npy_arrives_whole_or_not_at_all() {
    use fm_data::{NpyType, NpyWriter};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.npy");
    let mut out = NpyWriter::create(&path, NpyType::F32, &[3, 2]).unwrap();
    out.write_f32(&[1.0, 2.0]).unwrap();
    out.write_f32(&[3.0, 4.0, 5.0, 6.0]).unwrap();
    assert!(
        out.write_f32(&[7.0]).is_err(),
        "more values than the shape holds"
    );
    assert!(!path.exists(), "nothing under the final name before finish");
    out.finish().unwrap();
    let back = read_npy(&path).unwrap();
    assert_eq!(
        (back.dim, back.values),
        (2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    );
    let short = dir.path().join("short.npy");
    let mut out = NpyWriter::create(&short, NpyType::U8, &[4]).unwrap();
    out.write_u8(&[1, 2]).unwrap();
    assert!(out.write_f32(&[1.0]).is_err(), "the element type is fixed");
    assert!(
        out.finish()
            .unwrap_err()
            .to_string()
            .contains("2 values never arrived")
    );
    assert!(!short.exists());
}

/// A writer dropped before `finish` (an error on the way) leaves neither the array nor its
/// partial file behind.
#[test]
fn an_unfinished_npy_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.npy");
    let mut w = fm_data::NpyWriter::create(&path, fm_data::NpyType::F32, &[4, 2]).unwrap();
    w.write_f32(&[1.0, 2.0]).unwrap();
    drop(w);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
