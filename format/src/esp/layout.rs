//! The flash layout ota-sign devices use: where `ota-sign flash` puts things, what the
//! simulator boots, and what the agent looks for. One definition, so the three agree.
//!
//! | offset   | size   | partition   | ESP-IDF type / subtype | why                              |
//! |---------:|-------:|-------------|------------------------|----------------------------------|
//! | 0x9000   | 8 KiB  | `nvs`       | data / nvs (0x02)      | ESP-IDF and WiFi calibration     |
//! | 0xB000   | 8 KiB  | `ota_state` | data / undefined (0x06)| the agent's two state sectors    |
//! | 0xD000   | 8 KiB  | `otadata`   | data / ota (0x00)      | boot-slot selection (two sectors)|
//! | 0xF000   | 4 KiB  | `phy_init`  | data / phy (0x01)      | RF calibration data              |
//! | 0x10000  | …      | `ota_0`, `ota_1` (optionally `factory` first) | app      | 64 KiB aligned app slots |

/// Name of the agent's state partition.
pub const STATE_PARTITION: &str = "ota_state";
/// Size of the agent's state partition: it alternates between two 4 KiB sectors.
pub const STATE_PARTITION_SIZE: u32 = 0x2000;
/// Size of `otadata`: two sectors, as ESP-IDF requires.
pub const OTADATA_SIZE: u32 = 0x2000;
/// Where app partitions start in the default layout.
pub const FIRST_APP_OFFSET: u32 = 0x1_0000;

/// A data partition of the default layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataPartition {
    /// Partition label.
    pub name: &'static str,
    /// ESP-IDF data subtype.
    pub subtype: u8,
    /// Flash offset.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// The data partitions of the default layout, in flash order.
pub const DEFAULT_DATA_PARTITIONS: [DataPartition; 4] = [
    DataPartition {
        name: "nvs",
        subtype: 0x02,
        offset: 0x9000,
        size: 0x2000,
    },
    DataPartition {
        name: STATE_PARTITION,
        subtype: 0x06,
        offset: 0xB000,
        size: STATE_PARTITION_SIZE,
    },
    DataPartition {
        name: "otadata",
        subtype: 0x00,
        offset: 0xD000,
        size: OTADATA_SIZE,
    },
    DataPartition {
        name: "phy_init",
        subtype: 0x01,
        offset: 0xF000,
        size: 0x1000,
    },
];
