//! The `serde` feature: values round-trip through JSON exactly, in the
//! shape `psi_core::json` writes.
#![cfg(feature = "serde")]

mod common;

use proptest::prelude::*;
use psi_core::{Line, Percent, Pressure, Record, Resource};
use serde_json::Value;

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    let text = serde_json::to_string(v).expect("serialized");
    serde_json::from_str(&text).expect("deserialized")
}

/// What `psi_core::json` writes for `p`, as a JSON value.
fn envelope(p: &Pressure) -> Value {
    let mut out = Vec::new();
    psi_core::json::pressure(&mut out, p);
    serde_json::from_slice(&out).expect("valid JSON")
}

#[test]
fn real_files_round_trip_and_match_the_envelope() {
    for (name, bytes) in common::REAL {
        let p = psi_core::parse(bytes).expect(name);
        assert_eq!(round_trip(&p), p, "{name}");
        assert_eq!(
            serde_json::to_value(p).expect("value"),
            envelope(&p),
            "{name}"
        );
    }
}

#[test]
fn the_shape_is_the_envelope_s() {
    let p = psi_core::parse(b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n")
        .expect("valid");
    assert_eq!(
        serde_json::to_string(&p).expect("serialized"),
        r#"{"some":{"avg10":0.12,"avg60":1.05,"avg300":10.5,"total":123456789},"full":null}"#
    );
    // The envelope's own text (two decimals always) reads back equal.
    let mut out = Vec::new();
    psi_core::json::pressure(&mut out, &p);
    assert_eq!(serde_json::from_slice::<Pressure>(&out).expect("read"), p);
    // A missing line is no line.
    let some_only: Pressure = serde_json::from_str(
        r#"{"some":{"avg10":0.12,"avg60":1.05,"avg300":10.50,"total":123456789}}"#,
    )
    .expect("read");
    assert_eq!(some_only, p);
}

#[test]
fn kernel_words() {
    for r in Resource::ALL {
        assert_eq!(serde_json::to_value(r).expect("value"), r.name());
        assert_eq!(round_trip(&r), r);
    }
    for l in Line::ALL {
        assert_eq!(serde_json::to_value(l).expect("value"), l.name());
        assert_eq!(round_trip(&l), l);
    }
    let e = serde_json::from_str::<Resource>(r#""disk""#).expect_err("unknown");
    assert!(e.to_string().contains("one of cpu, memory, io, irq"), "{e}");
}

#[test]
fn percent_with_more_than_two_decimals_is_refused() {
    for bad in ["1.234", "-1", "42949673", "\"1.00\""] {
        assert!(serde_json::from_str::<Percent>(bad).is_err(), "{bad}");
    }
    assert_eq!(
        serde_json::from_str::<Percent>("100").expect("int"),
        Percent(10_000)
    );
}

fn record() -> impl Strategy<Value = Record> {
    (any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(a, b, c, total)| Record {
        avg10: Percent(a),
        avg60: Percent(b),
        avg300: Percent(c),
        total,
    })
}

proptest! {
    #[test]
    fn any_pressure_round_trips_exactly(some in proptest::option::of(record()), full in proptest::option::of(record())) {
        let p = Pressure { some, full };
        prop_assert_eq!(round_trip(&p), p);
        prop_assert_eq!(serde_json::to_value(p).expect("value"), envelope(&p));
    }
}
