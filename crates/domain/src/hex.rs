//! Lower-case hex written by hand on the stack: ids are written on every request (portfolio ids
//! in every response, trace ids in every request span), and `{:02x}` per byte through the
//! formatting machinery cost several thousand instructions per id.

/// The lower-case hex of `N / 2` bytes.
pub struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    /// The first `N / 2` bytes of `bytes`; digits past the end of a shorter slice stay `0`.
    pub fn of(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; N];
        for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        // Hex digits only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_written_as_two_lower_case_digits_each() {
        assert_eq!(Hex::<4>::of(&[0x00, 0xff]).as_str(), "00ff");
        let trace_id = 0x0af7651916cd43dd8448eb211c80319c_u128.to_be_bytes();
        assert_eq!(Hex::<32>::of(&trace_id).as_str(), "0af7651916cd43dd8448eb211c80319c");
    }
}
