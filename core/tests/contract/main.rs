//! The storage contract: every behaviour of the catalog, run once on SQLite and once on Postgres.
//!
//! Each case is an `async fn(&TestDb)` in a module below; the `contract!` macro turns each into
//! two tests, `sqlite::<case>` and `postgres::<case>`, each on its own fresh database.

mod instance;
mod maintenance;
mod mirror;
mod ownership;
mod processes;
mod tokens;
mod users;
mod webhooks;

macro_rules! contract {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = quiesce_core::testing::TestDb::new(quiesce_core::Backend::Sqlite).await;
                    super::$module::$case(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = quiesce_core::testing::TestDb::new(quiesce_core::Backend::Postgres).await;
                    super::$module::$case(&db).await;
                }
            )*
        }
    };
}

contract! {
    webhooks::webhook_logs_are_kept_updated_pruned_and_deleted_with_their_hook,
    tokens::tokens_are_found_by_hash_and_names_are_unique_among_live_ones,
    tokens::last_use_is_written_at_most_once_a_minute_and_listings_filter_by_owner,
    instance::a_new_catalog_has_no_instance_yet,
    instance::the_first_start_creates_the_identity,
    instance::later_starts_keep_the_identity_and_count_up,
    instance::migrations_are_idempotent_across_reopening,
    instance::an_upgraded_catalog_knows_the_tables_of_its_earlier_mirrors,
    instance::ping_answers_and_backend_is_reported,
    users::a_created_user_can_be_found_by_name_and_id,
    users::a_taken_username_is_a_duplicate_and_changes_nothing,
    users::the_first_admin_is_created_only_on_an_empty_catalog,
    users::racing_first_admin_set_ups_create_exactly_one,
    users::role_changes_and_disabling_are_stored_and_disabling_ends_sessions,
    users::a_password_reset_replaces_the_hash_and_ends_sessions,
    users::users_are_listed_by_name,
    users::the_audit_lists_newest_first_and_pages_backwards,
    users::a_user_created_by_an_admin_must_change_the_password,
    users::the_last_enabled_admin_cannot_be_demoted_or_disabled,
    users::parallel_demotions_and_disablings_leave_an_enabled_admin,
    users::a_device_is_trusted_only_for_the_user_who_signed_in_from_it,
    mirror::a_peer_is_listed_without_its_url,
    mirror::a_second_peer_with_the_same_name_is_a_conflict,
    mirror::stored_peer_urls_are_listed_and_replaced_for_sealing,
    mirror::a_peer_in_use_cannot_be_deleted,
    mirror::a_peer_counts_every_live_mirror_using_it,
    mirror::mirrors_of_a_source_and_of_a_table_are_read_with_their_holds,
    mirror::a_mirror_knows_since_when_it_is_in_its_status,
    mirror::a_new_mirror_starts_in_setup_without_holds,
    mirror::a_mirror_needs_existing_peers_and_a_free_name,
    mirror::adding_a_hold_pauses_and_is_idempotent,
    mirror::removing_the_last_hold_resumes_at_the_checkpoint_stage,
    mirror::progress_never_overrides_a_requested_pause,
    mirror::a_dropped_mirror_refuses_resume_and_progress,
    mirror::a_failed_mirror_keeps_its_reason_and_resumes_on_request,
    mirror::concurrent_holds_leave_a_consistent_status,
    mirror::mirror_pages_filter_in_the_catalog_and_count_every_match,
    maintenance::only_one_window_is_active_and_a_second_names_the_first,
    maintenance::racing_window_openings_create_exactly_one,
    maintenance::the_gate_refuses_creating_and_resuming_covered_mirrors_naming_the_window,
    maintenance::a_window_over_chosen_mirrors_still_allows_creating_mirrors,
    maintenance::holding_for_maintenance_writes_backup_and_hold_together_and_is_idempotent,
    maintenance::holding_many_in_one_transaction_skips_dropped_mirrors_and_is_idempotent,
    maintenance::releasing_passes_the_gate_only_while_disabling_and_records_the_outcome,
    maintenance::releasing_many_in_one_transaction_skips_released_mirrors,
    maintenance::releasing_many_returns_exactly_what_the_catalog_then_holds,
    maintenance::two_holders_racing_for_the_lease_get_it_once,
    maintenance::an_expired_lease_is_taken_over_with_a_new_token,
    maintenance::a_stale_holder_is_fenced_and_changes_nothing,
    maintenance::windows_and_requests_list_newest_first_with_filters_and_pages,
    maintenance::a_window_that_is_no_longer_enabling_gains_no_hold,
    maintenance::maintenance_does_not_take_a_mirror_a_user_paused,
    maintenance::releasing_the_lease_fences_its_token,
    maintenance::confirming_a_pause_records_the_checkpoint_the_worker_stopped_at,
    maintenance::a_resumed_mirror_is_pending_until_its_worker_confirms,
    maintenance::a_window_awaits_exactly_the_mirrors_its_confirm_steps_wait_for,
    maintenance::refreshing_statistics_analyses_the_tables_windows_look_up_by_key,
    maintenance::a_poll_never_takes_a_mirror_settling_meanwhile_for_dropped,
    maintenance::dropping_is_gated_only_for_mirrors_the_window_covers,
    maintenance::refused_and_failed_requests_can_be_listed_alone,
    maintenance::windows_count_outcomes_and_page_entries_in_the_catalog,
    processes::processes_register_beat_and_die_after_the_ttl,
    processes::a_missing_process_heartbeat_says_so_and_pruning_removes_only_the_silent,
    ownership::sources_spread_evenly_never_overlap_and_move_when_a_process_stops,
    ownership::a_stale_owner_cannot_write_a_checkpoint_or_a_status,
    ownership::many_pauses_are_confirmed_together_and_a_stale_claim_confirms_none,
    ownership::many_resumes_are_confirmed_together_and_a_stale_claim_confirms_none,
    ownership::a_stale_owner_changes_nothing_with_any_worker_write,
    ownership::concurrent_claims_never_overlap,
    ownership::a_source_without_live_mirrors_never_pushes_a_live_one_out,
}
