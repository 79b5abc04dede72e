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

diesel::table! {
    tracked_sessions (id) {
        id -> Text,
        app -> Text,
        user_name -> Text,
        state -> Text,
        started_at_ms -> BigInt,
                last_event_at_ms -> BigInt,
        last_seen_at_ms -> BigInt,
        active_since_ms -> Nullable<BigInt>,
        active_ms -> BigInt,
        ended_at_ms -> Nullable<BigInt>,
        events -> Integer,
    }
}

diesel::table! {
    tracked_events (session_id, seq) {
        session_id -> Text,
        seq -> Integer,
        kind -> Text,
        at_ms -> BigInt,
    }
}

diesel::table! {
    /// No primary key in the database (pieces are not addressed one by
    /// one); diesel needs one declared.
    tracked_intervals (session_id, from_ms) {
        session_id -> Text,
        app -> Text,
        user_name -> Text,
        bucket_ms -> BigInt,
        from_ms -> BigInt,
        to_ms -> BigInt,
    }
}

diesel::table! {
    track_buckets (app, subject, bucket_ms) {
        app -> Text,
        subject -> Text,
        bucket_ms -> BigInt,
        starts -> BigInt,
        ended -> BigInt,
        dur_sum_ms -> BigInt,
        dur_min_ms -> Nullable<BigInt>,
        dur_max_ms -> Nullable<BigInt>,
        active_ms -> BigInt,
    }
}

diesel::table! {
    page_visits (id) {
        id -> Text,
        app -> Text,
        user_name -> Text,
        page -> Text,
        timespent -> BigInt,
        session_id -> Nullable<Text>,
        at_ms -> BigInt,
    }
}

diesel::table! {
    page_folds (app) {
        app -> Text,
        folded_ms -> BigInt,
    }
}

diesel::table! {
    page_totals (app, subject, page) {
        app -> Text,
        subject -> Text,
        page -> Text,
        visits -> BigInt,
        time_sum -> BigInt,
    }
}

diesel::table! {
    page_days (app, subject, day_ms, page) {
        app -> Text,
        subject -> Text,
        day_ms -> BigInt,
        page -> Text,
        visits -> BigInt,
        time_sum -> BigInt,
    }
}

diesel::table! {
    page_buckets (app, subject, bucket_ms, page) {
        app -> Text,
        subject -> Text,
        bucket_ms -> BigInt,
        page -> Text,
        visits -> BigInt,
        time_sum -> BigInt,
    }
}

diesel::table! {
    login_failures (key) {
        key -> Text,
        failures -> Integer,
        last_failure_ms -> BigInt,
        locked_until_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Never joined: not in `allow_tables_to_appear_in_same_query!`.
    login_successes (key) {
        key -> Text,
        succeeded_ms -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        state -> Text,
        created_at_ms -> BigInt,
        activated_at_ms -> Nullable<BigInt>,
        retired_at_ms -> Nullable<BigInt>,
        material -> Binary,
        sealed -> Bool,
    }
}

diesel::joinable!(device_sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> device_sessions (session_id));
diesel::joinable!(tracked_events -> tracked_sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    counters,
    users,
    device_sessions,
    refresh_tokens,
    settings,
    login_failures,
    audit_events,
    tracked_sessions,
    tracked_events,
    tracked_intervals,
    track_buckets,
    page_visits,
    page_folds,
    page_totals,
    page_days,
    page_buckets,
    signing_keys,
);
