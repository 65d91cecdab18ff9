//! Parsing `vgs` / `lvs` output (`--noheadings --unit=g --nosuffix --separator :`) and
//! turning it into Cinder's pool stats for thick, thin and mirrored layouts.

/// One line of `vgs -o name,size,free,lv_count,uuid`.
#[derive(Debug, Clone, PartialEq)]
pub struct VgInfo {
    pub name: String,
    pub size_gb: f64,
    pub free_gb: f64,
    pub lv_count: u64,
    pub uuid: String,
}

/// One line of `lvs -o vg_name,name,size,lv_attr,pool_lv,origin,data_percent`.
#[derive(Debug, Clone, PartialEq)]
pub struct LvInfo {
    pub vg: String,
    pub name: String,
    pub size_gb: f64,
    pub attr: String,
    pub pool_lv: String,
    pub origin: String,
    /// Thin pools and thin volumes: percentage of data used.
    pub data_percent: Option<f64>,
}

fn num(field: &str, what: &str, line: &str) -> Result<f64, String> {
    field
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("cannot read {what} `{field}` in line `{line}`"))
}

fn fields<'a>(line: &'a str, n: usize, cmd: &str) -> Result<Vec<&'a str>, String> {
    let f: Vec<&str> = line.trim().split(':').collect();
    if f.len() == n {
        Ok(f)
    } else {
        Err(format!(
            "unexpected {cmd} output line `{}` ({} fields, expected {n})",
            line.trim(),
            f.len()
        ))
    }
}

pub fn parse_vgs(out: &str) -> Result<Vec<VgInfo>, String> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f = fields(line, 5, "vgs")?;
            Ok(VgInfo {
                name: f[0].trim().to_string(),
                size_gb: num(f[1], "size", line)?,
                free_gb: num(f[2], "free", line)?,
                lv_count: f[3]
                    .trim()
                    .parse()
                    .map_err(|_| format!("cannot read lv_count `{}` in `{line}`", f[3]))?,
                uuid: f[4].trim().to_string(),
            })
        })
        .collect()
}

pub fn parse_lvs(out: &str) -> Result<Vec<LvInfo>, String> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f = fields(line, 7, "lvs")?;
            let pct = f[6].trim();
            Ok(LvInfo {
                vg: f[0].trim().to_string(),
                name: f[1].trim().to_string(),
                size_gb: num(f[2], "size", line)?,
                attr: f[3].trim().to_string(),
                pool_lv: f[4].trim().to_string(),
                origin: f[5].trim().to_string(),
                data_percent: if pct.is_empty() {
                    None
                } else {
                    Some(num(pct, "data_percent", line)?)
                },
            })
        })
        .collect()
}

/// Capacity figures of the single pool, as Cinder's LVM driver computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacities {
    pub total_gb: f64,
    pub free_gb: f64,
    pub provisioned_gb: f64,
    pub allocated_gb: f64,
    pub total_volumes: u64,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `thin_pool`: the pool LV's name when `lvm_type = "thin"`; `mirrors`: `lvm_mirrors`.
pub fn capacities(
    vg: &VgInfo,
    lvs: &[LvInfo],
    thin_pool: Option<&str>,
    mirrors: u32,
) -> Result<Capacities, String> {
    let allocated: f64 = lvs
        .iter()
        .filter(|lv| lv.name.starts_with("volume-"))
        .map(|lv| lv.size_gb)
        .sum();
    let (total, free, provisioned) = if let Some(pool) = thin_pool {
        let p = lvs
            .iter()
            .find(|lv| lv.name == pool)
            .ok_or_else(|| format!("thin pool `{}/{pool}` not found in lvs output", vg.name))?;
        let used = p.data_percent.unwrap_or(0.0) / 100.0;
        let provisioned: f64 = lvs
            .iter()
            .filter(|lv| lv.pool_lv == pool)
            .map(|lv| lv.size_gb)
            .sum();
        (p.size_gb, p.size_gb * (1.0 - used), provisioned)
    } else if mirrors > 0 {
        // Every mirrored GiB takes mirrors + 1 GiB of the group.
        let copies = f64::from(mirrors + 1);
        let (t, f) = (vg.size_gb / copies, vg.free_gb / copies);
        (t, f, t - f)
    } else {
        (vg.size_gb, vg.free_gb, vg.size_gb - vg.free_gb)
    };
    Ok(Capacities {
        total_gb: round2(total),
        free_gb: round2(free),
        provisioned_gb: round2(provisioned),
        allocated_gb: round2(allocated),
        total_volumes: vg.lv_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VGS: &str = "  cinder-volumes:20.00:7.50:3:Kc8rTU-1AbC-xyz0-9Q0d-aaaa-bbbb-cccccc\n";

    #[test]
    fn vgs_lines_parse() {
        let v = parse_vgs(VGS).unwrap();
        assert_eq!(
            v,
            vec![VgInfo {
                name: "cinder-volumes".into(),
                size_gb: 20.0,
                free_gb: 7.5,
                lv_count: 3,
                uuid: "Kc8rTU-1AbC-xyz0-9Q0d-aaaa-bbbb-cccccc".into()
            }]
        );
        assert!(parse_vgs("  vg:1.00:x:0:u\n").unwrap_err().contains("free"));
        assert!(parse_vgs("garbage\n").is_err());
        assert!(parse_vgs("\n").unwrap().is_empty());
    }

    #[test]
    fn lvs_lines_parse_with_empty_fields() {
        let l = parse_lvs(
            "  vg:cinder-volumes-pool:19.00:twi-aotz--:::12.50\n  vg:volume-a:1.00:-wi-XX----:::\n",
        )
        .unwrap();
        assert_eq!(l[0].data_percent, Some(12.5));
        assert_eq!(l[1].data_percent, None);
        assert_eq!(l[1].pool_lv, "");
    }

    #[test]
    fn thick_thin_and_mirror_capacities() {
        let vg = &parse_vgs(VGS).unwrap()[0];
        let lvs = parse_lvs(
            "  cinder-volumes:cinder-volumes-pool:19.00:twi-aotz--:::12.50\n\
             \x20 cinder-volumes:volume-a:10.00:Vwi-a-tz--:cinder-volumes-pool::25.00\n\
             \x20 cinder-volumes:snapshot-b:10.00:Vwi---tz-k:cinder-volumes-pool:volume-a:\n",
        )
        .unwrap();
        let thick = capacities(vg, &lvs, None, 0).unwrap();
        assert_eq!(
            (thick.total_gb, thick.free_gb, thick.provisioned_gb),
            (20.0, 7.5, 12.5)
        );
        assert_eq!(thick.allocated_gb, 10.0);
        assert_eq!(thick.total_volumes, 3);
        let thin = capacities(vg, &lvs, Some("cinder-volumes-pool"), 0).unwrap();
        assert_eq!(
            (thin.total_gb, thin.free_gb, thin.provisioned_gb),
            (19.0, 16.63, 20.0)
        );
        let mirrored = capacities(vg, &lvs, None, 1).unwrap();
        assert_eq!((mirrored.total_gb, mirrored.free_gb), (10.0, 3.75));
        assert!(capacities(vg, &lvs, Some("missing"), 0).is_err());
    }
}
