//! Names for simulated tenants and mailboxes. Mailbox addresses are computed
//! from the mailbox's index within its tenant (and parsed back), so millions
//! of mailboxes need no stored strings.

pub(super) const FIRST: [&str; 64] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken",
    "laura", "mallory", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "ursula",
    "victor", "wendy", "xavier", "yvonne", "zoe", "amir", "bea", "chen", "dana", "eli", "fatima",
    "gus", "hana", "igor", "jon", "kira", "luis", "mei", "nils", "olga", "pavel", "rosa", "sami",
    "tara", "uma", "vera", "will", "yusuf", "zara", "anna", "ben", "clara", "dirk", "emma", "femi",
    "gina", "hugo", "ines", "jack", "kofi", "lena", "marc", "noor",
];

pub(super) const LAST: [&str; 64] = [
    "smith", "jones", "brown", "taylor", "wilson", "davies", "evans", "thomas", "roberts",
    "walker", "white", "martin", "garcia", "muller", "schmidt", "meyer", "dubois", "moreau",
    "rossi", "russo", "silva", "santos", "novak", "kowalski", "nielsen", "hansen", "jansen",
    "devries", "tanaka", "sato", "kim", "lee", "park", "nguyen", "tran", "singh", "kumar", "patel",
    "khan", "ali", "okafor", "mensah", "cohen", "levi", "haddad", "costa", "ferreira", "lopez",
    "perez", "diaz", "reyes", "cruz", "morales", "ortiz", "kaur", "ahmed", "hussain", "ivanov",
    "petrov", "popescu", "horvat", "nagy", "virtanen", "berg",
];

const NAME_A: [&str; 40] = [
    "Acme",
    "Northwind",
    "Blue",
    "Granite",
    "Harbor",
    "Summit",
    "Pioneer",
    "Cedar",
    "Silver",
    "Maple",
    "Atlas",
    "Beacon",
    "Crescent",
    "Delta",
    "Evergreen",
    "Falcon",
    "Golden",
    "Highland",
    "Iron",
    "Juniper",
    "Keystone",
    "Lakeside",
    "Meridian",
    "Nova",
    "Oak",
    "Pacific",
    "Quarry",
    "Redwood",
    "Sterling",
    "Tidewater",
    "Union",
    "Valley",
    "Westfield",
    "Yellowstone",
    "Zenith",
    "Riverside",
    "Bayview",
    "Copper",
    "Aurora",
    "Prairie",
];

const NAME_B: [&str; 30] = [
    "Title",
    "Dental",
    "Law",
    "Realty",
    "Logistics",
    "Clinic",
    "Hosting",
    "Media",
    "Builders",
    "Accounting",
    "Insurance",
    "Travel",
    "Foods",
    "Labs",
    "Design",
    "Consulting",
    "Motors",
    "Pharmacy",
    "Studios",
    "Partners",
    "Outfitters",
    "Marine",
    "Energy",
    "Print",
    "Farms",
    "Academy",
    "Capital",
    "Networks",
    "Telecom",
    "Relief",
];

const PLACE: [&str; 40] = [
    "Leeds", "Austin", "Utrecht", "Lyon", "Porto", "Dublin", "Denver", "Calgary", "Perth",
    "Bremen", "Malmo", "Ghent", "Tampa", "Boise", "Reno", "Halifax", "Cork", "Turin", "Graz",
    "Bergen", "Aarhus", "Tulsa", "Omaha", "Quebec", "Derby", "Bath", "Essen", "Lille", "Nantes",
    "Basel", "Krakow", "Brno", "Split", "Riga", "Tartu", "Oulu", "Kent", "Salem", "Dover",
    "Surrey",
];

const SUFFIX: [&str; 8] = [
    "", " Inc", " LLC", " Ltd", " GmbH", " & Co", " Group", " BV",
];
const TLD: [&str; 8] = ["com", "net", "org", "co.uk", "de", "nl", "ca", "com.au"];

/// Tenant display name and domain base for tenant number `i`; `pick` gives
/// deterministic choices. The first two are the seed's protagonists: a title
/// company that could not close property sales and a humanitarian
/// organisation without mail for days.
pub(super) fn tenant_name(
    i: u64,
    pick: impl Fn(u64, u64) -> u64,
) -> (String, String, &'static str) {
    match i {
        0 => return ("Acme Title & Escrow".into(), "acme-title".into(), "com"),
        1 => {
            return (
                "Relief Without Borders".into(),
                "relief-without-borders".into(),
                "org",
            );
        }
        _ => {}
    }
    let a = NAME_A[pick(1, NAME_A.len() as u64) as usize];
    let b = NAME_B[pick(2, NAME_B.len() as u64) as usize];
    let s = SUFFIX[pick(3, SUFFIX.len() as u64) as usize];
    let tld = TLD[pick(4, TLD.len() as u64) as usize];
    let base = format!("{}-{}", a.to_lowercase(), b.to_lowercase());
    // Past the two-word combinations, a place name; past those, a number.
    // Names may repeat, like real company names; the caller keeps domains
    // unique.
    let pairs = (NAME_A.len() * NAME_B.len()) as u64;
    let (name, base) = if i < pairs / 2 {
        (format!("{a} {b}{s}"), base)
    } else if i < pairs * PLACE.len() as u64 / 2 {
        let p = PLACE[pick(5, PLACE.len() as u64) as usize];
        (
            format!("{p} {a} {b}{s}"),
            format!("{}-{base}", p.to_lowercase()),
        )
    } else {
        (format!("{a} {b} {i}{s}"), format!("{base}-{i}"))
    };
    (name, base, tld)
}

/// The domain number `d` of a tenant whose domains share `base` and `tld`.
pub(super) fn domain(base: &str, tld: &str, d: u32) -> String {
    let mut s = String::with_capacity(base.len() + tld.len() + 12);
    push_domain(&mut s, base, tld, d);
    s
}

/// Appends [`domain`]`(base, tld, d)` to `out`. Names are built by
/// appending, not with `format!`: a lookup names up to 20 mailboxes per
/// answer, and the formatting machinery was most of what naming one cost.
pub(super) fn push_domain(out: &mut String, base: &str, tld: &str, d: u32) {
    out.push_str(base);
    if d > 0 {
        push_number(out, d as u64 + 1);
    }
    out.push('.');
    out.push_str(tld);
}

/// Local part for the `k`-th mailbox on one domain: `alice.smith`,
/// `bob.smith`, ..., then `alice.smith2` after 4,096.
pub(super) fn local_part(k: u64) -> String {
    let mut s = String::with_capacity(32);
    push_local_part(&mut s, k);
    s
}

/// Appends [`local_part`]`(k)` to `out`.
pub(super) fn push_local_part(out: &mut String, k: u64) {
    out.push_str(FIRST[(k % 64) as usize]);
    out.push('.');
    out.push_str(LAST[((k / 64) % 64) as usize]);
    let n = k / 4096;
    if n > 0 {
        push_number(out, n + 1);
    }
}

/// The storage volume `v` of a cluster: `a-vol07`.
pub(super) fn volume(cluster: &str, v: u64) -> String {
    let mut s = String::with_capacity(cluster.len() + 6);
    s.push_str(cluster);
    s.push_str("-vol");
    if v < 10 {
        s.push('0');
    }
    push_number(&mut s, v);
    s
}

/// Appends `n` in decimal.
fn push_number(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// Inverse of `local_part`.
pub(super) fn parse_local_part(s: &str) -> Option<u64> {
    let (f, rest) = s.split_once('.')?;
    let fi = FIRST.iter().position(|x| *x == f)? as u64;
    let digits = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let l = &rest[..rest.len() - digits.len()];
    let li = LAST.iter().position(|x| *x == l)? as u64;
    let n = if digits.is_empty() {
        0
    } else {
        let v: u64 = digits.parse().ok()?;
        if v < 2 || digits.starts_with('0') {
            return None;
        }
        v - 1
    };
    Some(n * 4096 + li * 64 + fi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_built_by_appending_are_the_formatted_ones() {
        for k in [
            0u64,
            1,
            63,
            64,
            4095,
            4096,
            4097,
            40_959,
            40_960,
            1 << 40,
            u64::MAX,
        ] {
            let f = FIRST[(k % 64) as usize];
            let l = LAST[((k / 64) % 64) as usize];
            let want = match k / 4096 {
                0 => format!("{f}.{l}"),
                n => format!("{f}.{l}{}", n + 1),
            };
            assert_eq!(local_part(k), want, "k {k}");
        }
        for v in [0u64, 7, 9, 10, 23, 100] {
            assert_eq!(volume("b", v), format!("b-vol{v:02}"));
        }
        for d in [0u32, 1, 8, 9, 99, 255, u32::MAX - 1] {
            let want = match d {
                0 => "acme-title.com".to_string(),
                d => format!("acme-title{}.com", d as u64 + 1),
            };
            assert_eq!(domain("acme-title", "com", d), want, "d {d}");
        }
    }

    #[test]
    fn local_parts_round_trip() {
        for k in [0, 1, 63, 64, 4095, 4096, 4097, 123_456] {
            assert_eq!(parse_local_part(&local_part(k)), Some(k), "{k}");
        }
        assert_eq!(parse_local_part("alice.smith1"), None);
        assert_eq!(parse_local_part("mallory.nobody"), None);
        assert_eq!(parse_local_part(""), None);
    }

    #[test]
    fn domains_are_distinct() {
        assert_eq!(domain("acme-title", "com", 0), "acme-title.com");
        assert_eq!(domain("acme-title", "com", 1), "acme-title2.com");
    }
}
