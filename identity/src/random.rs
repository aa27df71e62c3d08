//! Random bytes from the TLS provider's CSPRNG (aws-lc-rs), so the crate needs no `rand`.

pub(crate) fn fill(buf: &mut [u8]) {
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(buf)
        .expect("the system random number generator failed");
}
