//! Units as Docker reads and writes them: sizes (`512M`), Go durations (`1m30s`),
//! CPU counts (`0.5`), and go-units' human durations (`About a minute`).

pub mod duration;
pub mod human;
pub mod size;
