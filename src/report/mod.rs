/*!
What people and machines read: the endpoint list (`specter endpoints`) and the inventory
as an OpenAPI document (`specter export-openapi`).
*/

pub mod endpoints;
pub mod openapi;
