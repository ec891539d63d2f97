/*!
What people and machines read: the endpoint list (`specter endpoints`), the inventory
as an OpenAPI document (`specter export-openapi`) and the diff's findings in six formats
(`specter diff --format`).
*/

pub mod endpoints;
pub mod findings;
pub mod openapi;
