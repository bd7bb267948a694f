//! TR 101 290 1.4, Continuity_count_error, for one PID.

use crate::ts::packet::TsPacket;

/// What one packet did to the continuity of its PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CcVerdict {
    Ok,
    /// The CC skipped ahead (or went back): `lost` packets missing if it was a loss.
    Jump {
        expected: u8,
        found: u8,
        lost: u8,
    },
    /// The same CC for the third time (one duplicate is allowed).
    Duplicated {
        cc: u8,
        times: u8,
    },
    /// A packet without payload changed the CC (it must repeat the last one).
    ChangedWithoutPayload {
        previous: u8,
        found: u8,
    },
}

/// Continuity state of one PID. Rules (ISO/IEC 13818-1 2.4.3.3, TR 101 290 1.4): the CC
/// advances by one per packet with payload; a packet may be sent twice (one duplicate);
/// packets without payload repeat the CC; a discontinuity_indicator excuses any jump.
#[derive(Debug, Clone, Default)]
pub(super) struct ContinuityCounter {
    last: Option<u8>,
    repeats: u8,
}

impl ContinuityCounter {
    pub(super) fn check(&mut self, packet: &TsPacket) -> CcVerdict {
        let cc = packet.cc();
        let discontinuity = packet.discontinuity_indicator();
        match packet.adaptation_field_control() {
            0 => CcVerdict::Ok, // reserved: decoders discard such packets
            2 => match self.last {
                Some(previous) if previous != cc && !discontinuity => {
                    CcVerdict::ChangedWithoutPayload {
                        previous,
                        found: cc,
                    }
                }
                Some(_) => CcVerdict::Ok,
                None => {
                    self.last = Some(cc);
                    CcVerdict::Ok
                }
            },
            _ => {
                let Some(last) = self.last.replace(cc) else {
                    return CcVerdict::Ok;
                };
                let expected = (last + 1) & 0x0F;
                if discontinuity || cc == expected {
                    self.repeats = 0;
                    CcVerdict::Ok
                } else if cc == last {
                    self.repeats = self.repeats.saturating_add(1);
                    if self.repeats > 1 {
                        CcVerdict::Duplicated {
                            cc,
                            times: self.repeats + 1,
                        }
                    } else {
                        CcVerdict::Ok
                    }
                } else {
                    self.repeats = 0;
                    CcVerdict::Jump {
                        expected,
                        found: cc,
                        lost: cc.wrapping_sub(expected) & 0x0F,
                    }
                }
            }
        }
    }
}
