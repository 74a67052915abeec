//! Shared helpers: read a sweep back with `lenspipe_fits::scan_headers` and
//! decode column values straight from the big-endian rows.
#![allow(dead_code)]

use lenspipe_fits::{scan_headers, BinTableLayout, HeaderScan};
use std::path::Path;

pub struct Table {
    pub layout: BinTableLayout,
    pub bytes: Vec<u8>,
}

pub fn read_table(path: &Path) -> Table {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let layout =
        match scan_headers(&bytes, &path.display().to_string()).expect("valid FITS headers") {
            HeaderScan::Complete(l) => l,
            HeaderScan::NeedMore { at_least } => {
                panic!("scan_headers wants {at_least} bytes of a whole file")
            }
        };
    Table { layout, bytes }
}

impl Table {
    pub fn nrows(&self) -> usize {
        self.layout.nrows as usize
    }

    fn field(&self, name: &str, row: usize, code: char) -> &[u8] {
        let c = self
            .layout
            .columns
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        assert_eq!(
            c.tform.code, code,
            "column {name} has type {}",
            c.tform.code
        );
        assert!(row < self.nrows());
        let start = self.layout.data_offset as usize + row * self.layout.row_len + c.offset;
        let w = match code {
            'L' | 'B' | 'A' => 1,
            'I' => 2,
            'J' | 'E' => 4,
            _ => 8,
        } * c.tform.repeat;
        &self.bytes[start..start + w]
    }

    pub fn f64(&self, name: &str, row: usize) -> f64 {
        f64::from_be_bytes(self.field(name, row, 'D').try_into().unwrap())
    }
    pub fn f32(&self, name: &str, row: usize) -> f32 {
        f32::from_be_bytes(self.field(name, row, 'E')[..4].try_into().unwrap())
    }
    pub fn i16(&self, name: &str, row: usize) -> i16 {
        i16::from_be_bytes(self.field(name, row, 'I').try_into().unwrap())
    }
    pub fn i32(&self, name: &str, row: usize) -> i32 {
        i32::from_be_bytes(self.field(name, row, 'J').try_into().unwrap())
    }
    pub fn i64(&self, name: &str, row: usize) -> i64 {
        i64::from_be_bytes(self.field(name, row, 'K').try_into().unwrap())
    }
    pub fn u8(&self, name: &str, row: usize) -> u8 {
        self.field(name, row, 'B')[0]
    }
    pub fn bool(&self, name: &str, row: usize) -> bool {
        match self.field(name, row, 'L')[0] {
            b'T' => true,
            b'F' => false,
            other => panic!("logical byte {other:#x}"),
        }
    }
    pub fn str(&self, name: &str, row: usize) -> String {
        String::from_utf8(self.field(name, row, 'A').to_vec())
            .unwrap()
            .trim_end_matches([' ', '\0'])
            .to_string()
    }
    pub fn mag_z(&self, row: usize) -> Option<f64> {
        let f = self.f32("FLUX_Z", row) as f64;
        (f > 0.0).then(|| 22.5 - 2.5 * f.log10())
    }
}

/// A fresh directory under the target tmp dir.
pub fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lenspipe-synth-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
