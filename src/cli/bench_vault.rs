//! `sigil bench vault`: seal/open throughput through the vault's real code paths, the
//! audited `open_for` (one redb write transaction each), argon2id unlock time, and a full
//! rotation; and API-key lookup (the gateway's per-request authentication), login-limit
//! refusals and a password check. Numbers go in docs/PERFORMANCE.md under "Vault".

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ambient::Ambient;
use crate::auth::Principal;
use crate::store::{Role, SecretRecord, Store, UserRecord};
use crate::vault::rotate::{RotateOptions, rotate};
use crate::vault::{KdfParams, Purpose, SecretSource, SecretValue, Secrets, Vault, VaultOptions};

use super::bench::TempDir;

pub fn run(count: usize) -> anyhow::Result<()> {
    let count = count.max(1);
    let tmp = TempDir::new()?;
    let dir = &tmp.0;
    println!(
        "machine: {} cores; data dir {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.display()
    );
    let ambient = Ambient::default();
    let store = Arc::new(Store::open(&dir.join("sigil.redb"))?);
    let vault = Arc::new(Vault::open(
        &store,
        dir,
        &VaultOptions::default(),
        &ambient,
    )?);

    // Raw AEAD path: seal and open one row, single thread.
    for size in [32usize, 1024, 64 * 1024] {
        let value = SecretValue::new("v".repeat(size));
        let t = Instant::now();
        let mut blob = None;
        for _ in 0..count {
            blob = Some(vault.seal_secret("usr_bench", "BENCH", 1, &value));
        }
        let seal = t.elapsed();
        let rec = SecretRecord {
            owner: "usr_bench".into(),
            name: "BENCH".into(),
            description: None,
            version: 1,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
            sealed: blob.ok_or_else(|| anyhow::anyhow!("nothing sealed"))?,
        };
        let t = Instant::now();
        for _ in 0..count {
            let v = vault
                .open_secret("usr_bench", "BENCH", &rec)
                .map_err(|e| anyhow::anyhow!("open: {e:?}"))?;
            std::hint::black_box(v.len());
        }
        let open = t.elapsed();
        println!(
            "seal/open {:>6} B: seal {:>9.0}/s ({:.2} µs), open {:>9.0}/s ({:.2} µs), {:.0} MiB/s sealed",
            size,
            per_sec(count, seal),
            us(seal, count),
            per_sec(count, open),
            us(open, count),
            (size * count) as f64 / 1048576.0 / seal.as_secs_f64()
        );
    }

    // The audited path the runtime will use: lookup + decrypt + last-used + audit, committed.
    let secrets = Secrets::new(store.clone(), vault.clone(), ambient.clone());
    let who = bench_user(&store)?;
    let n_secrets = 1000usize.min(count.max(100));
    let t = Instant::now();
    for i in 0..n_secrets {
        secrets.create(
            &who,
            &format!("SECRET_{i}"),
            SecretValue::new(format!("value-{i}-{}", "x".repeat(40))),
            None,
        )?;
    }
    let created = t.elapsed();
    println!(
        "create: {n_secrets} secrets in {:.0} ms = {:.0}/s (one committed transaction each)",
        ms(created),
        per_sec(n_secrets, created)
    );
    let owner = secrets.owner_of(&who)?;
    let purpose = Purpose {
        actor: "bench".into(),
        reason: "bench".into(),
        deployment: None,
    };
    let rounds = (count / 10).clamp(50, 2000);
    let names: Vec<String> = (0..3).map(|i| format!("SECRET_{i}")).collect();
    let t = Instant::now();
    for _ in 0..rounds {
        let got = secrets.open_for(&owner, &names, &purpose)?;
        std::hint::black_box(got.len());
    }
    let took = t.elapsed();
    println!(
        "open_for (3 names, audited): {rounds} calls, {:.0}/s, {:.3} ms each",
        per_sec(rounds, took),
        ms(took) / rounds as f64
    );

    // Rotation of everything created above, in one transaction.
    let t = Instant::now();
    let (_, report) = rotate(
        &store,
        dir,
        &vault,
        None,
        &RotateOptions {
            actor: "bench".into(),
            ..Default::default()
        },
        &ambient,
    )?;
    println!(
        "rotate: {} secrets re-sealed and key file swapped in {:.0} ms",
        report.secrets,
        ms(t.elapsed())
    );
    bench_keys(&store, &ambient, count)?;
    drop((secrets, vault, store));

    // argon2id unlock with the default cost (what a passphrase vault pays at each start).
    let pdir = dir.join("passphrase");
    std::fs::create_dir_all(&pdir)?;
    let pstore = Store::open(&pdir.join("sigil.redb"))?;
    let opts = VaultOptions {
        passphrase: Some(SecretValue::new("bench passphrase, long enough".into())),
        kdf: KdfParams::default(),
    };
    Vault::open(&pstore, &pdir, &opts, &ambient)?;
    let t = Instant::now();
    Vault::open(&pstore, &pdir, &opts, &ambient)?;
    let k = KdfParams::default();
    println!(
        "unlock: passphrase vault (argon2id {} KiB, {} iterations, parallelism {}) opens in {:.0} ms; key-file vault needs no derivation",
        k.memory_kib,
        k.iterations,
        k.parallelism,
        ms(t.elapsed())
    );
    Ok(())
}

/// Key lookup cold (hash + two point reads) and warm (hash + cache hit), the last-used
/// flush, a refused login (limiter only) and a password check (argon2id).
fn bench_keys(store: &Arc<Store>, ambient: &Ambient, count: usize) -> anyhow::Result<()> {
    use crate::auth::Accounts;
    let accounts = Accounts::new(store.clone(), ambient.clone());
    let n_keys = 1000usize;
    let mut tokens = Vec::with_capacity(n_keys);
    for i in 0..n_keys {
        tokens.push(accounts.create_key("bench", &format!("k{i}"))?.0);
    }
    // Cold: a fresh cache, each key once.
    let cold = Accounts::new(store.clone(), ambient.clone());
    let t = Instant::now();
    for tok in &tokens {
        std::hint::black_box(cold.authenticate(tok)?);
    }
    let took = t.elapsed();
    println!(
        "key lookup cold ({n_keys} keys, store read): {:.0}/s, {:.2} µs each",
        per_sec(n_keys, took),
        us(took, n_keys)
    );
    let rounds = count.max(n_keys) * 10;
    let t = Instant::now();
    for i in 0..rounds {
        std::hint::black_box(cold.authenticate(&tokens[i % n_keys])?);
    }
    let took = t.elapsed();
    println!(
        "key lookup warm (hash + cache hit + use time): {:.0}/s, {:.2} µs each",
        per_sec(rounds, took),
        us(took, rounds)
    );
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let cold = Arc::new(cold);
    let tokens = Arc::new(tokens);
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|th| {
            let (a, toks) = (cold.clone(), tokens.clone());
            std::thread::spawn(move || {
                for i in 0..rounds {
                    let _ = std::hint::black_box(a.authenticate(&toks[(i + th) % toks.len()]));
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let took = t.elapsed();
    println!(
        "key lookup warm, {threads} threads: {:.0}/s total",
        per_sec(rounds * threads, took)
    );
    let t = Instant::now();
    let flushed = cold.flush_last_used(true)?;
    println!(
        "last-used flush: {flushed} keys in one transaction, {:.1} ms",
        ms(t.elapsed())
    );
    // A refused login costs the limiter only; an accepted attempt costs argon2id.
    for _ in 0..10 {
        let _ = cold.login("bench", "wrong password here", "192.0.2.1");
    }
    let t = Instant::now();
    let refusals = 10_000;
    for _ in 0..refusals {
        let _ = std::hint::black_box(cold.login("bench", "wrong password here", "192.0.2.1"));
    }
    let refused = t.elapsed();
    // An unknown user is checked against a dummy hash, as slow as a real one (made once).
    let _ = cold.verify_password("nobody-here", "wrong password here");
    let t = Instant::now();
    let _ = cold.verify_password("nobody-here", "wrong password here");
    let hashed = t.elapsed();
    println!(
        "login refused by the rate limit: {:.2} µs; password check (argon2id defaults): {:.0} ms",
        us(refused, refusals),
        ms(hashed)
    );
    Ok(())
}

fn bench_user(store: &Store) -> anyhow::Result<Principal> {
    store.write(|w| {
        w.put(
            b"bench",
            &UserRecord {
                id: "usr_bench".into(),
                username: "bench".into(),
                password_hash: String::new(),
                role: Role::Member,
                disabled: false,
                must_change_password: false,
                created_at: 0,
            },
        )
    })?;
    Ok(Principal {
        user: "bench".into(),
        role: Role::Member,
        key_id: "key_bench".into(),
        scopes: crate::auth::Scopes::all(),
    })
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}
fn us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
