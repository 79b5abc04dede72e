//! A minimal MaxMind DB writer, so tests need no downloaded database: one
//! IPv4 network mapped to one GeoIP2-City-shaped record. Shared by the
//! end-to-end suite and the server's unit tests (via `#[path]`).

/// Builds an IPv4 MaxMind DB in which `network/prefix` maps to a
/// record with the given city (optional), country code and name.
pub fn build_mmdb(
    network: [u8; 4],
    prefix: u32,
    city: Option<&str>,
    cc: &str,
    country: &str,
) -> Vec<u8> {
    let node_count = prefix;
    let bits = u32::from_be_bytes(network);
    // Data section: the record, a GeoIP2 City-shaped map.
    let mut data = Vec::new();
    let mut entries = vec![(
        "country",
        Value::Map(vec![
            ("iso_code", Value::Str(cc.to_owned())),
            ("names", Value::Map(vec![("en", Value::Str(country.to_owned()))])),
        ]),
    )];
    if let Some(city) = city {
        entries.push((
            "city",
            Value::Map(vec![("names", Value::Map(vec![("en", Value::Str(city.to_owned()))]))]),
        ));
    }
    Value::Map(entries).encode(&mut data);
    // Search tree, 24-bit records: node i tests bit i of the address;
    // the matching side leads on, the other side holds "no data".
    let data_pointer = node_count + 16;
    let mut tree = Vec::new();
    for i in 0..node_count {
        let bit = (bits >> (31 - i)) & 1;
        let next = if i + 1 == node_count { data_pointer } else { i + 1 };
        let (left, right) = if bit == 0 { (next, node_count) } else { (node_count, next) };
        tree.extend_from_slice(&left.to_be_bytes()[1..]);
        tree.extend_from_slice(&right.to_be_bytes()[1..]);
    }
    let mut out = tree;
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    Value::Map(vec![
        ("binary_format_major_version", Value::U16(2)),
        ("binary_format_minor_version", Value::U16(0)),
        ("build_epoch", Value::U64(1_700_000_000)),
        ("database_type", Value::Str("GeoIP2-City".into())),
        ("description", Value::Map(vec![("en", Value::Str("sessiond test".into()))])),
        ("ip_version", Value::U16(4)),
        ("languages", Value::Array(vec![Value::Str("en".into())])),
        ("node_count", Value::U32(node_count)),
        ("record_size", Value::U16(24)),
    ])
    .encode(&mut out);
    out
}

enum Value {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'static str, Value)>),
    Array(Vec<Value>),
}

impl Value {
    fn encode(&self, out: &mut Vec<u8>) {
        fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
            // Sizes below 29 fit the control byte; tests never need more.
            let size = u8::try_from(size).unwrap_or(28).min(28);
            if kind <= 7 {
                out.push((kind << 5) | size);
            } else {
                out.push(size);
                out.push(kind - 7);
            }
        }
        fn uint(out: &mut Vec<u8>, kind: u8, v: u64) {
            let bytes = v.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            control(out, kind, 8 - skip);
            out.extend_from_slice(&bytes[skip..]);
        }
        match self {
            Self::Str(s) => {
                control(out, 2, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Self::U16(v) => uint(out, 5, u64::from(*v)),
            Self::U32(v) => uint(out, 6, u64::from(*v)),
            Self::U64(v) => uint(out, 9, *v),
            Self::Map(entries) => {
                control(out, 7, entries.len());
                for (k, v) in entries {
                    Self::Str((*k).to_owned()).encode(out);
                    v.encode(out);
                }
            }
            Self::Array(items) => {
                control(out, 11, items.len());
                for v in items {
                    v.encode(out);
                }
            }
        }
    }
}
