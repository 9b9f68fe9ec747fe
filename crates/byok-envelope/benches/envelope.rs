#![allow(clippy::unwrap_used)] // a benchmark that fails should stop loudly
//! In-process data plane cost per record against raw AES-256-GCM (aws-lc-rs) on the same data,
//! in the same run: PRODUCT.md's target is ≥ 0.8× raw for 4 KiB records.
//! `cargo bench -p byok-envelope`

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use byok_envelope::{RecordSealer, TenantKey};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal");
    for size in [1024usize, 4096, 65536] {
        let data = vec![7u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[1u8; 32]).unwrap());
        let mut counter = 0u64;
        group.bench_with_input(BenchmarkId::new("raw-aes-256-gcm", size), &data, |b, data| {
            b.iter(|| {
                counter += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                let mut out = Vec::with_capacity(data.len() + 16);
                out.extend_from_slice(data);
                let tag = raw.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"record-id"), &mut out).unwrap();
                out.extend_from_slice(tag.as_ref());
                out
            })
        });
        let sealer = RecordSealer::new("tenant-bench", TenantKey::generate().unwrap(), 1).unwrap();
        group.bench_with_input(BenchmarkId::new("byok-seal", size), &data, |b, data| b.iter(|| sealer.seal(b"record-id", data).unwrap()));
        let mut sealed_raw = data.clone();
        let tag =
            raw.seal_in_place_separate_tag(Nonce::assume_unique_for_key([9u8; 12]), Aad::from(b"record-id"), &mut sealed_raw).unwrap();
        sealed_raw.extend_from_slice(tag.as_ref());
        group.bench_with_input(BenchmarkId::new("raw-open", size), &sealed_raw, |b, sealed| {
            b.iter(|| {
                let mut buf = sealed.clone();
                let n = raw.open_in_place(Nonce::assume_unique_for_key([9u8; 12]), Aad::from(b"record-id"), &mut buf).unwrap().len();
                buf.truncate(n);
                buf
            })
        });
        group.bench_with_input(BenchmarkId::new("raw-open-zeroized", size), &sealed_raw, |b, sealed| {
            b.iter(|| {
                let mut buf = zeroize::Zeroizing::new(sealed.clone());
                let n =
                    raw.open_in_place(Nonce::assume_unique_for_key([9u8; 12]), Aad::from(b"record-id"), buf.as_mut_slice()).unwrap().len();
                buf.truncate(n);
                buf
            })
        });
        group.bench_with_input(BenchmarkId::new("raw-open-wiped", size), &sealed_raw, |b, sealed| {
            b.iter(|| {
                let mut buf = sealed.clone();
                let n = raw.open_in_place(Nonce::assume_unique_for_key([9u8; 12]), Aad::from(b"record-id"), &mut buf).unwrap().len();
                byok_envelope::wipe(&mut buf[..n]);
                n
            })
        });
        let record = sealer.seal(b"record-id", &data).unwrap();
        group.bench_with_input(BenchmarkId::new("byok-open", size), &record, |b, record| {
            b.iter(|| sealer.open(b"record-id", record).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
