//! Usage-analytics domain of sessiond: tracked usage sessions, page visits
//! and the reports built from them. Not built yet; see issue 4.
