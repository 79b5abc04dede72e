//! Table definitions, written by hand to match `migrations/` (both flavours
//! have the same tables, columns and types).

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        seq -> BigInt,
        user_code -> Text,
        username -> Text,
        username_lower -> Text,
        email -> Nullable<Text>,
        email_lower -> Nullable<Text>,
        name -> Nullable<Text>,
        password_hash -> Text,
        role -> Text,
        status -> Text,
        last_activity_ms -> Nullable<BigInt>,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    device_sessions (id) {
        id -> Text,
        user_id -> Text,
        app -> Text,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        login_method -> Text,
        created_at_ms -> BigInt,
        expires_at_ms -> BigInt,
        last_activity_ms -> BigInt,
        state -> Text,
        ended_at_ms -> Nullable<BigInt>,
        refresh_hash -> Text,
        location -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        superseded_at_ms -> BigInt,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at_ms -> BigInt,
        action -> Text,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
        outcome -> Text,
    }
}

diesel::joinable!(device_sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> device_sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    counters,
    users,
    device_sessions,
    refresh_tokens,
    settings,
    audit_events,
);
