//! CRC-32/MPEG-2, the checksum that ends every PSI/SI section.

const MPEG2: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2);

/// CRC-32/MPEG-2 of `bytes`. A whole section including its CRC field yields 0.
pub fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    MPEG2.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // CRC catalogue check value for CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn section_with_crc_checks_to_zero() {
        let mut s = vec![0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xE1, 0x00];
        let c = crc32_mpeg2(&s);
        s.extend_from_slice(&c.to_be_bytes());
        assert_eq!(crc32_mpeg2(&s), 0);
    }
}
