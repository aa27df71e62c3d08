//! VXLAN network identifiers: one per overlay network, unique in the swarm, from
//! Docker's overlay range (4096 up to 2^24 - 1; lower ones are left to local use).

use std::collections::BTreeSet;

/// The first VNI the overlay driver hands out (libnetwork's `vxlanIDStart`).
pub const VNI_START: u32 = 4096;
/// The last: VNIs are 24 bits.
pub const VNI_END: u32 = (1 << 24) - 1;

/// The lowest VNI not in `used`, now in it; `None` when the range is exhausted.
pub fn allocate_vni(used: &mut BTreeSet<u32>) -> Option<u32> {
    let mut candidate = VNI_START;
    for &v in used.range(VNI_START..) {
        if v != candidate {
            break;
        }
        candidate += 1;
    }
    (candidate <= VNI_END).then(|| {
        used.insert(candidate);
        candidate
    })
}
