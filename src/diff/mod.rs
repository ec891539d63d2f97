/*!
Specs against reality: the inventory's endpoints matched to the operations of the specs,
and the findings (shadow, zombie, unobserved, pii, drift, posture) with their evidence.
*/

pub mod fields;
pub mod matching;
pub mod model;
