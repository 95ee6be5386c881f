const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of a big-endian byte string; leading zero bytes keep their length as '0's so
/// every 32-byte input gives a token of similar length.
pub fn base62(bytes: &[u8]) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while num.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(ALPHABET[rem as usize]);
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    out.extend(std::iter::repeat_n(b'0', zeros));
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::base62;

    #[test]
    fn known_values() {
        assert_eq!(base62(&[0]), "0");
        assert_eq!(base62(&[61]), "z");
        assert_eq!(base62(&[62]), "10");
        assert_eq!(base62(&[1, 0]), "48");
        assert_eq!(base62(&[0, 1]), "01");
        assert!(base62(&[255; 32]).len() <= 43);
    }
}
