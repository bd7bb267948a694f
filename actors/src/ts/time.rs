//! Transport stream clocks: the 27 MHz PCR, the 90 kHz PTS/DTS, both with 33-bit wrap, and
//! the mux rate that maps output byte positions to time.

use serde::{Deserialize, Serialize};

/// 27 MHz ticks per second.
pub const PCR_HZ: u64 = 27_000_000;
/// 90 kHz ticks per second.
pub const PTS_HZ: u64 = 90_000;
/// PTS/DTS wrap: 2^33 ticks of 90 kHz (about 26.5 hours).
pub const PTS_WRAP: u64 = 1 << 33;
/// PCR wrap: base wraps at 2^33, times 300 for the extension.
pub const PCR_WRAP: u64 = PTS_WRAP * 300;

/// A 90 kHz presentation or decoding timestamp, always reduced modulo 2^33.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pts(u64);

impl Pts {
    pub const fn new(ticks: u64) -> Self {
        Pts(ticks % PTS_WRAP)
    }
    pub const fn ticks(self) -> u64 {
        self.0
    }
    /// Adds a signed offset, wrapping at 2^33.
    pub fn offset(self, delta: i64) -> Self {
        Pts((self.0 as i128 + delta as i128).rem_euclid(PTS_WRAP as i128) as u64)
    }
    /// `self - earlier` as the shortest signed distance on the 33-bit circle.
    pub fn since(self, earlier: Pts) -> i64 {
        wrapped_diff(self.0, earlier.0, PTS_WRAP)
    }
}

/// A 27 MHz program clock reference, reduced modulo 2^33 * 300.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pcr(u64);

impl Pcr {
    pub const fn new(ticks: u64) -> Self {
        Pcr(ticks % PCR_WRAP)
    }
    pub const fn from_parts(base: u64, ext: u16) -> Self {
        Pcr::new(base * 300 + ext as u64)
    }
    pub const fn ticks(self) -> u64 {
        self.0
    }
    pub const fn base(self) -> u64 {
        self.0 / 300
    }
    pub const fn ext(self) -> u16 {
        (self.0 % 300) as u16
    }
    /// `self - earlier` as the shortest signed distance on the PCR circle.
    pub fn since(self, earlier: Pcr) -> i64 {
        wrapped_diff(self.0, earlier.0, PCR_WRAP)
    }
    /// The 90 kHz time this PCR stands for.
    pub const fn to_pts(self) -> Pts {
        Pts::new(self.base())
    }
}

fn wrapped_diff(a: u64, b: u64, wrap: u64) -> i64 {
    let d = (a as i128 - b as i128).rem_euclid(wrap as i128);
    if d >= (wrap / 2) as i128 {
        (d - wrap as i128) as i64
    } else {
        d as i64
    }
}

/// The constant output bit rate of a channel's transport stream, in bit/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MuxRate(u64);

impl MuxRate {
    /// Panics on zero; configuration validation rejects it first.
    pub fn new(bits_per_second: u64) -> Self {
        assert!(bits_per_second > 0, "mux rate must be positive");
        MuxRate(bits_per_second)
    }
    pub const fn bits_per_second(self) -> u64 {
        self.0
    }
    /// 27 MHz time at which byte `byte_index` of the output starts, exact (rounded down).
    pub fn byte_time_27mhz(self, byte_index: u128) -> u128 {
        byte_index * 8 * PCR_HZ as u128 / self.0 as u128
    }
    /// Nanoseconds from packet 0 to the start of packet `k`.
    pub fn packet_offset_ns(self, k: u64) -> u128 {
        k as u128 * 188 * 8 * 1_000_000_000 / self.0 as u128
    }
    /// The first packet index whose start is at or after `ns` nanoseconds from packet 0.
    pub fn packet_at_ns(self, ns: u128) -> u64 {
        let per = 188u128 * 8 * 1_000_000_000;
        (ns * self.0 as u128).div_ceil(per) as u64
    }
    /// Packets per second (fractional).
    pub fn packets_per_second(self) -> f64 {
        self.0 as f64 / (188.0 * 8.0)
    }
    /// The largest whole number of packets that fits in `ms` milliseconds (at least 1).
    pub fn packets_in_ms(self, ms: u64) -> u64 {
        ((self.0 as u128 * ms as u128) / (188 * 8 * 1000)).max(1) as u64
    }
    /// Number of packets spanning `ticks_90k` of 90 kHz time, rounded up.
    pub fn packets_for_90k(self, ticks_90k: u64) -> u64 {
        (ticks_90k as u128 * self.0 as u128).div_ceil(PTS_HZ as u128 * 188 * 8) as u64
    }
    /// Number of packets spanning `ticks_27m` of 27 MHz time, rounded up.
    pub fn packets_for_27m(self, ticks_27m: u64) -> u64 {
        (ticks_27m as u128 * self.0 as u128).div_ceil(PCR_HZ as u128 * 188 * 8) as u64
    }
    /// The PCR of packet `k` when the PCR field sits at its usual place (bytes 6..12):
    /// the time of the byte holding the last bit of program_clock_reference_base.
    pub fn pcr_of_packet(self, k: u64) -> Pcr {
        Pcr::new((self.byte_time_27mhz(k as u128 * 188 + 10) % PCR_WRAP as u128) as u64)
    }
    /// 90 kHz time at the start of packet `k` (not wrapped).
    pub fn packet_time_90k(self, k: u64) -> u64 {
        (k as u128 * 188 * 8 * PTS_HZ as u128 / self.0 as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_wraps_at_33_bits() {
        let p = Pts::new(PTS_WRAP - 10);
        assert_eq!(p.offset(25).ticks(), 15);
        assert_eq!(Pts::new(15).since(p), 25);
        assert_eq!(p.since(Pts::new(15)), -25);
        assert_eq!(Pts::new(5).offset(-10).ticks(), PTS_WRAP - 5);
    }

    #[test]
    fn pcr_parts_and_wrap() {
        let p = Pcr::from_parts(PTS_WRAP - 1, 299);
        assert_eq!(p.ticks(), PCR_WRAP - 1);
        assert_eq!(Pcr::new(PCR_WRAP + 7).ticks(), 7);
        assert_eq!(Pcr::new(3).since(p), 4);
        assert_eq!(p.base(), PTS_WRAP - 1);
        assert_eq!(p.ext(), 299);
        assert_eq!(Pcr::new(300 * 90_000).to_pts().ticks(), 90_000);
    }

    #[test]
    fn mux_rate_timing_is_exact() {
        let r = MuxRate::new(4_000_000);
        // 4 Mbit/s: one 188-byte packet lasts 376 us.
        assert_eq!(r.packet_offset_ns(1), 376_000);
        assert_eq!(r.packet_offset_ns(10_000), 3_760_000_000);
        assert_eq!(r.packet_at_ns(376_000), 1);
        assert_eq!(r.packet_at_ns(376_001), 2);
        assert_eq!(r.byte_time_27mhz(188), 376 * 27);
        assert_eq!(r.packets_in_ms(100), 265);
        assert_eq!(r.packet_time_90k(2660), 90_014);
        assert_eq!(r.packets_for_90k(90_000), 2660);
        assert_eq!(r.packets_for_27m(27_000_000), 2660);
        // PCR of packet 1: byte 198 at 4 Mbit/s = 198 * 8 / 4e6 s = 396 us = 10692 ticks.
        assert_eq!(r.pcr_of_packet(1), Pcr::new(10_692));
    }
}
