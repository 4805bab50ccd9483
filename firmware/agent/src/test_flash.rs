//! A strict in-memory NOR flash for the agent's unit tests: erase to `0xFF` by whole
//! sectors, writes only clear bits, aligned accesses, and a power cut after N operations
//! (the simulator crate has the full-featured one; this keeps `ota-agent`'s own tests
//! free of a dependency cycle).

extern crate std;

use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TestFlashError {
    Kind(NorFlashErrorKind),
    /// A write to a byte that was not erased (would silently AND bits on real NOR).
    NotErased,
    PowerCut,
}

impl NorFlashError for TestFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            TestFlashError::Kind(k) => *k,
            _ => NorFlashErrorKind::Other,
        }
    }
}

#[derive(Clone)]
pub struct TestFlash {
    pub data: Vec<u8>,
    pub ops: usize,
    pub cut_at: Option<usize>,
    /// Where a write may re-program bytes by clearing bits (otadata's word updates);
    /// everywhere else a write needs erased bytes, which catches a missing erase even
    /// when the same data is written again.
    pub multiwrite: core::ops::Range<usize>,
}

impl TestFlash {
    pub fn new(size: usize) -> Self {
        TestFlash {
            data: vec![0xFF; size],
            ops: 0,
            cut_at: None,
            multiwrite: 0..0,
        }
    }

    /// Counts an operation; at the cut, applies the first half of it (a torn operation)
    /// and fails, and every later operation fails.
    fn op(
        &mut self,
        range: core::ops::Range<usize>,
        value: Option<&[u8]>,
    ) -> Result<(), TestFlashError> {
        match self.cut_at {
            Some(n) if self.ops > n => return Err(TestFlashError::PowerCut),
            Some(n) if self.ops == n => {
                self.ops += 1;
                let half = range.start + range.len() / 2;
                match value {
                    Some(v) => {
                        self.data[range.start..half].copy_from_slice(&v[..half - range.start])
                    }
                    None => self.data[range.start..half].fill(0xFF),
                }
                return Err(TestFlashError::PowerCut);
            }
            _ => {}
        }
        self.ops += 1;
        match value {
            Some(v) => self.data[range].copy_from_slice(v),
            None => self.data[range].fill(0xFF),
        }
        Ok(())
    }
}

impl ErrorType for TestFlash {
    type Error = TestFlashError;
}

impl ReadNorFlash for TestFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let start = offset as usize;
        let src = self
            .data
            .get(start..start + bytes.len())
            .ok_or(TestFlashError::Kind(NorFlashErrorKind::OutOfBounds))?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for TestFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(Self::ERASE_SIZE)
            || !to.is_multiple_of(Self::ERASE_SIZE)
            || to < from
        {
            return Err(TestFlashError::Kind(NorFlashErrorKind::NotAligned));
        }
        if to > self.data.len() {
            return Err(TestFlashError::Kind(NorFlashErrorKind::OutOfBounds));
        }
        self.op(from..to, None)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let start = offset as usize;
        if !start.is_multiple_of(Self::WRITE_SIZE) || !bytes.len().is_multiple_of(Self::WRITE_SIZE)
        {
            return Err(TestFlashError::Kind(NorFlashErrorKind::NotAligned));
        }
        if start + bytes.len() > self.data.len() {
            return Err(TestFlashError::Kind(NorFlashErrorKind::OutOfBounds));
        }
        let multi = self.multiwrite.contains(&start);
        let old = &self.data[start..start + bytes.len()];
        if old
            .iter()
            .zip(bytes)
            .any(|(&o, &n)| if multi { o & n != n } else { o != 0xFF })
        {
            return Err(TestFlashError::NotErased);
        }
        self.op(start..start + bytes.len(), Some(bytes))
    }
}

impl MultiwriteNorFlash for TestFlash {}
