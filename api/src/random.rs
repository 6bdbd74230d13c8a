//! Random identifiers, from the OS random source.

/// `bytes` random bytes as lowercase hex.
pub fn hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
