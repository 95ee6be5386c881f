//! Sizing tiers, per-deployment overrides within configured bounds, and the monthly cost
//! estimate from configured Cloud Run prices (request-based billing).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CloudError, CloudRunConfig};
pub use crate::store::CloudPlacement as Placement;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    ApiRouter,
    Processing,
    Compute,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::ApiRouter, Tier::Processing, Tier::Compute];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::ApiRouter => "api_router",
            Tier::Processing => "processing",
            Tier::Compute => "compute",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The tier's defaults. api_router gets 1 vCPU, the floor Cloud Run allows with a
    /// concurrency above 1 (fractional CPUs force concurrency 1).
    pub fn placement(self) -> Placement {
        let (cpu, memory_mib, max_instances) = match self {
            Tier::ApiRouter => (1.0, 512, 3),
            Tier::Processing => (1.0, 2048, 5),
            Tier::Compute => (4.0, 8192, 10),
        };
        Placement {
            tier: self.as_str().into(),
            cpu,
            memory_mib,
            min_instances: 0,
            max_instances,
            concurrency: 80,
            timeout_secs: 300,
            service: String::new(),
        }
    }
}

/// Per-deployment overrides of a tier (`resources` in the deploy request).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overrides {
    pub cpu: Option<f64>,
    pub memory_mib: Option<u64>,
    pub min_instances: Option<u32>,
    pub max_instances: Option<u32>,
    pub concurrency: Option<u32>,
    pub timeout_secs: Option<u32>,
}

impl Overrides {
    pub fn apply(&self, p: &mut Placement) {
        if let Some(v) = self.cpu {
            p.cpu = v;
        }
        if let Some(v) = self.memory_mib {
            p.memory_mib = v;
        }
        if let Some(v) = self.min_instances {
            p.min_instances = v;
        }
        if let Some(v) = self.max_instances {
            p.max_instances = v;
        }
        if let Some(v) = self.concurrency {
            p.concurrency = v;
        }
        if let Some(v) = self.timeout_secs {
            p.timeout_secs = v;
        }
    }
}

/// Check a placement against Cloud Run's limits and the configured bounds.
pub fn check(p: &Placement, cfg: &CloudRunConfig) -> Result<(), CloudError> {
    let bad = |m: String| Err(CloudError::Invalid(m));
    let whole = [1.0, 2.0, 4.0, 6.0, 8.0];
    if !(p.cpu >= 0.08 && (p.cpu < 1.0 || whole.contains(&p.cpu))) {
        return bad(format!(
            "cpu {} is not a Cloud Run size (0.08 to below 1, or 1, 2, 4, 6, 8)",
            p.cpu
        ));
    }
    if p.cpu > cfg.max_cpu {
        return bad(format!(
            "cpu {} is above this Sigil's bound of {} ([cloudrun] max_cpu)",
            p.cpu, cfg.max_cpu
        ));
    }
    if p.cpu < 1.0 && p.concurrency != 1 {
        return bad("a fractional cpu requires concurrency 1".into());
    }
    if p.memory_mib < 128 || p.memory_mib > cfg.max_memory_mib.min(32768) {
        return bad(format!(
            "memoryMib {} is outside 128..={} ([cloudrun] max_memory_mib)",
            p.memory_mib,
            cfg.max_memory_mib.min(32768)
        ));
    }
    if p.cpu >= 4.0 && p.memory_mib < 2048 || p.cpu >= 6.0 && p.memory_mib < 4096 {
        return bad(format!(
            "{} vCPU needs more memory than {} MiB",
            p.cpu, p.memory_mib
        ));
    }
    if p.max_instances == 0 || p.max_instances > cfg.max_instances {
        return bad(format!(
            "maxInstances {} is outside 1..={} ([cloudrun] max_instances)",
            p.max_instances, cfg.max_instances
        ));
    }
    if p.min_instances > p.max_instances {
        return bad(format!(
            "minInstances {} is above maxInstances {}",
            p.min_instances, p.max_instances
        ));
    }
    if !(1..=1000).contains(&p.concurrency) {
        return bad(format!("concurrency {} is outside 1..=1000", p.concurrency));
    }
    if !(1..=3600).contains(&p.timeout_secs) {
        return bad(format!(
            "timeoutSecs {} is outside 1..=3600",
            p.timeout_secs
        ));
    }
    Ok(())
}

/// Cloud Run prices (USD, Tier 1 regions, request-based billing) and the traffic the
/// estimate assumes. Re-check https://cloud.google.com/run/pricing before relying on them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prices {
    pub vcpu_second: f64,
    pub gib_second: f64,
    pub per_million_requests: f64,
    pub idle_vcpu_second: f64,
    pub idle_gib_second: f64,
    pub free_vcpu_seconds: f64,
    pub free_gib_seconds: f64,
    pub free_requests: f64,
    /// The traffic the estimate assumes per deployment.
    pub requests_per_month: f64,
    pub avg_request_ms: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            vcpu_second: 0.000024,
            gib_second: 0.0000025,
            per_million_requests: 0.40,
            idle_vcpu_second: 0.0000025,
            idle_gib_second: 0.0000025,
            free_vcpu_seconds: 180_000.0,
            free_gib_seconds: 360_000.0,
            free_requests: 2_000_000.0,
            requests_per_month: 100_000.0,
            avg_request_ms: 500.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    pub monthly_usd: f64,
    pub cpu_usd: f64,
    pub memory_usd: f64,
    pub requests_usd: f64,
    pub idle_min_instances_usd: f64,
    pub requests_per_month: f64,
    pub avg_request_ms: f64,
}

const MONTH_S: f64 = 30.0 * 24.0 * 3600.0;

/// The monthly cost of a placement. Conservative: requests are assumed not to overlap
/// (each bills its own instance time, rounded up to 100 ms), and the free tier is counted
/// as if this deployment were the billing account's only workload.
pub fn estimate(p: &Placement, prices: &Prices) -> Estimate {
    let gib = p.memory_mib as f64 / 1024.0;
    let billed_s = (prices.avg_request_ms / 100.0).ceil() * 0.1;
    let active_s = prices.requests_per_month * billed_s;
    let cpu_usd = (active_s * p.cpu - prices.free_vcpu_seconds).max(0.0) * prices.vcpu_second;
    let memory_usd = (active_s * gib - prices.free_gib_seconds).max(0.0) * prices.gib_second;
    let requests_usd = (prices.requests_per_month - prices.free_requests).max(0.0) / 1e6
        * prices.per_million_requests;
    let idle = p.min_instances as f64
        * MONTH_S
        * (p.cpu * prices.idle_vcpu_second + gib * prices.idle_gib_second);
    let round = |v: f64| (v * 100.0).round() / 100.0;
    Estimate {
        monthly_usd: round(cpu_usd + memory_usd + requests_usd + idle),
        cpu_usd: round(cpu_usd),
        memory_usd: round(memory_usd),
        requests_usd: round(requests_usd),
        idle_min_instances_usd: round(idle),
        requests_per_month: prices.requests_per_month,
        avg_request_ms: prices.avg_request_ms,
    }
}

/// How a placement is shown in the API.
pub fn view(p: &Placement, prices: &Prices) -> Value {
    json!({
        "tier": p.tier,
        "service": p.service,
        "cpu": p.cpu,
        "memoryMib": p.memory_mib,
        "minInstances": p.min_instances,
        "maxInstances": p.max_instances,
        "concurrency": p.concurrency,
        "timeoutSecs": p.timeout_secs,
        "costEstimate": estimate(p, prices),
    })
}

/// Cloud Run's CPU syntax: "1", "4", "0.5".
pub fn cpu_string(cpu: f64) -> String {
    if cpu.fract() == 0.0 {
        format!("{}", cpu as u64)
    } else {
        format!("{cpu}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_fit_cloud_run_and_default_bounds() {
        let cfg = CloudRunConfig::default();
        for t in Tier::ALL {
            check(&t.placement(), &cfg).unwrap();
            assert_eq!(Tier::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn overrides_are_bounded() {
        let cfg = CloudRunConfig::default();
        let mut p = Tier::ApiRouter.placement();
        Overrides {
            max_instances: Some(50),
            ..Overrides::default()
        }
        .apply(&mut p);
        assert!(
            check(&p, &cfg)
                .unwrap_err()
                .to_string()
                .contains("max_instances")
        );
        let mut p = Tier::ApiRouter.placement();
        p.cpu = 0.5;
        assert!(
            check(&p, &cfg)
                .unwrap_err()
                .to_string()
                .contains("concurrency 1")
        );
        p.concurrency = 1;
        check(&p, &cfg).unwrap();
        p.cpu = 3.0;
        assert!(check(&p, &cfg).is_err());
    }

    #[test]
    fn the_estimate_counts_the_free_tier_and_idle_instances() {
        let prices = Prices::default();
        let small = estimate(&Tier::ApiRouter.placement(), &prices);
        assert_eq!(small.monthly_usd, 0.0, "{small:?}");
        let mut warm = Tier::Processing.placement();
        warm.min_instances = 1;
        let e = estimate(&warm, &prices);
        // 2,592,000 s × (1 × 0.0000025 + 2 × 0.0000025) = 19.44
        assert_eq!(e.idle_min_instances_usd, 19.44);
        let busy = Prices {
            requests_per_month: 10_000_000.0,
            ..Prices::default()
        };
        let e = estimate(&Tier::Compute.placement(), &busy);
        // 5,000,000 s active: cpu (20M − 180k) × 0.000024, memory (40M − 360k) × 0.0000025,
        // requests 8M × 0.40/M.
        assert_eq!(e.cpu_usd, 475.68);
        assert_eq!(e.memory_usd, 99.1);
        assert_eq!(e.requests_usd, 3.2);
    }

    #[test]
    fn cpu_strings() {
        assert_eq!(cpu_string(1.0), "1");
        assert_eq!(cpu_string(0.5), "0.5");
    }
}
