//go:build cgo

package sqlclass

// effect is what calling a function does, as far as the classifier knows.
type effect struct {
	class Class
	// hazards the call raises.
	serverFile, locks bool
}

// safeFunctions are built-in functions (pg_catalog) that return a value
// and change nothing: the allow-list. Only a call spelled without a schema
// or with pg_catalog matches it; a function of the same name in another
// schema is someone's own code and may do anything.
var safeFunctions = setOf(
	// aggregates
	"count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or", "every",
	"bit_and", "bit_or", "bit_xor", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
	"json_agg_strict", "jsonb_agg_strict", "json_objectagg", "json_arrayagg", "xmlagg",
	"stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "corr", "covar_pop", "covar_samp",
	"regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy", "regr_syy",
	"mode", "percentile_cont", "percentile_disc", "any_value", "range_agg", "range_intersect_agg",
	// window functions
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
	"first_value", "last_value", "nth_value",
	// strings
	"length", "char_length", "character_length", "octet_length", "bit_length", "lower", "upper", "initcap",
	"substr", "substring", "trim", "btrim", "ltrim", "rtrim", "concat", "concat_ws", "replace", "translate",
	"split_part", "left", "right", "lpad", "rpad", "position", "strpos", "format", "repeat", "reverse",
	"overlay", "starts_with", "ascii", "chr", "md5", "sha224", "sha256", "sha384", "sha512", "encode", "decode",
	"to_hex", "to_ascii", "quote_ident", "quote_literal", "quote_nullable", "regexp_replace", "regexp_match",
	"regexp_matches", "regexp_split_to_array", "regexp_split_to_table", "regexp_count", "regexp_instr",
	"regexp_like", "regexp_substr", "string_to_array", "string_to_table", "array_to_string", "normalize",
	"is_normalized", "unistr", "convert", "convert_from", "convert_to", "get_byte", "set_byte", "get_bit", "set_bit",
	"bit_count", "crc32", "crc32c", "parse_ident", "casefold",
	// numbers
	"abs", "ceil", "ceiling", "floor", "round", "trunc", "mod", "power", "pow", "sqrt", "cbrt", "exp", "ln",
	"log", "log10", "sign", "div", "gcd", "lcm", "factorial", "pi", "degrees", "radians", "sin", "cos", "tan",
	"asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "width_bucket", "scale", "min_scale",
	"trim_scale", "random", "random_normal", "numeric", "int4", "int8", "float8", "text", "erf", "erfc",
	// dates and times
	"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday", "date_trunc",
	"date_part", "extract", "date_bin", "age", "make_date", "make_time", "make_timestamp", "make_timestamptz",
	"make_interval", "justify_days", "justify_hours", "justify_interval", "to_char", "to_date", "to_number",
	"to_timestamp", "timezone", "isfinite", "date_add", "date_subtract",
	// JSON and arrays
	"to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object", "jsonb_build_object",
	"json_build_array", "jsonb_build_array", "json_object", "jsonb_object", "json_extract_path",
	"jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text", "json_array_length",
	"jsonb_array_length", "json_array_elements", "jsonb_array_elements", "json_array_elements_text",
	"jsonb_array_elements_text", "json_each", "jsonb_each", "json_each_text", "jsonb_each_text",
	"json_object_keys", "jsonb_object_keys", "json_typeof", "jsonb_typeof", "jsonb_set", "jsonb_set_lax",
	"jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty", "jsonb_path_query",
	"jsonb_path_query_array", "jsonb_path_query_first", "jsonb_path_exists", "jsonb_path_match",
	"json_populate_record", "jsonb_populate_record", "json_to_record", "jsonb_to_record",
	"json_to_recordset", "jsonb_to_recordset", "json_scalar", "json_serialize",
	"array_length", "array_lower", "array_upper", "array_ndims", "array_dims", "array_append",
	"array_prepend", "array_cat", "array_remove", "array_replace", "array_position", "array_positions",
	"array_fill", "array_reverse", "array_sample", "array_shuffle", "array_sort", "cardinality", "unnest",
	"trim_array", "generate_series", "generate_subscripts",
	// comparison and conditionals written as functions
	"num_nulls", "num_nonnulls",
	// ranges, network, uuid, misc values
	"lower_inc", "upper_inc", "lower_inf", "upper_inf", "isempty", "range_merge", "multirange",
	"int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange",
	"host", "hostmask", "masklen", "netmask", "network", "broadcast", "family", "abbrev", "inet_same_family",
	"inet_merge", "set_masklen",
	"gen_random_uuid", "uuidv4", "uuidv7", "uuid_extract_timestamp", "uuid_extract_version",
	"to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
	"ts_rank", "ts_rank_cd", "ts_headline", "setweight", "strip", "numnode", "querytree",
	"xmlparse", "xmlserialize", "xmlelement", "xmlforest", "xmlconcat", "xmlroot", "xpath", "xpath_exists",
	"xmlexists", "xml_is_well_formed",
	// session information (reads no table data)
	"version", "current_database", "current_schema", "current_schemas", "current_setting",
	"current_user", "session_user", "current_role", "user", "system_user", "pg_backend_pid",
	"inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port",
	"pg_postmaster_start_time", "pg_conf_load_time", "txid_current", "pg_current_xact_id",
	"pg_typeof", "pg_collation_for", "format_type", "col_description", "obj_description",
	"shobj_description", "has_table_privilege", "has_column_privilege", "has_schema_privilege",
	"has_function_privilege", "has_database_privilege", "has_sequence_privilege", "pg_has_role",
	"pg_table_is_visible", "pg_get_viewdef", "pg_get_indexdef", "pg_get_constraintdef",
	"pg_get_functiondef", "pg_get_expr", "pg_get_userbyid", "pg_relation_size", "pg_total_relation_size",
	"pg_table_size", "pg_indexes_size", "pg_database_size", "pg_size_pretty", "pg_column_size",
	"pg_is_in_recovery", "to_regclass", "to_regtype", "to_regproc", "to_regnamespace", "to_regrole",
	"currval", "lastval",
)

// knownFunctions are built-in functions whose effect is more than
// returning a value. dblink, dblink_exec and the other extension
// functions are not listed: they live in whatever schema the extension
// was installed in, so they are unknown like every function off the
// allow-list (dblink_exec runs SQL the classifier never sees).
var knownFunctions = map[string]effect{
	// change sequences: a write
	"nextval": {class: ClassWrite}, "setval": {class: ClassWrite},
	// large objects: writes, and server files
	"lo_create": {class: ClassWrite}, "lo_creat": {class: ClassWrite}, "lo_unlink": {class: ClassWrite},
	"lo_from_bytea": {class: ClassWrite}, "lo_put": {class: ClassWrite}, "lowrite": {class: ClassWrite},
	"lo_truncate": {class: ClassWrite}, "lo_truncate64": {class: ClassWrite},
	"lo_import": {class: ClassPrivilege, serverFile: true}, "lo_export": {class: ClassPrivilege, serverFile: true},
	// server files and directories
	"pg_read_file": {class: ClassPrivilege, serverFile: true}, "pg_read_binary_file": {class: ClassPrivilege, serverFile: true},
	"pg_ls_dir": {class: ClassPrivilege, serverFile: true}, "pg_stat_file": {class: ClassPrivilege, serverFile: true},
	"pg_ls_logdir": {class: ClassPrivilege, serverFile: true}, "pg_ls_waldir": {class: ClassPrivilege, serverFile: true},
	"pg_ls_tmpdir": {class: ClassPrivilege, serverFile: true}, "pg_ls_archive_statusdir": {class: ClassPrivilege, serverFile: true},
	"pg_file_write": {class: ClassPrivilege, serverFile: true}, "pg_file_unlink": {class: ClassPrivilege, serverFile: true},
	"pg_file_rename": {class: ClassPrivilege, serverFile: true}, "pg_file_sync": {class: ClassPrivilege, serverFile: true},
	// acting on other sessions and on the server
	"pg_terminate_backend": {class: ClassPrivilege}, "pg_cancel_backend": {class: ClassPrivilege},
	"pg_reload_conf": {class: ClassPrivilege}, "pg_rotate_logfile": {class: ClassPrivilege},
	"pg_switch_wal": {class: ClassPrivilege}, "pg_create_restore_point": {class: ClassPrivilege},
	"pg_promote": {class: ClassPrivilege}, "pg_backup_start": {class: ClassPrivilege}, "pg_backup_stop": {class: ClassPrivilege},
	"pg_create_physical_replication_slot": {class: ClassPrivilege}, "pg_create_logical_replication_slot": {class: ClassPrivilege},
	"pg_drop_replication_slot": {class: ClassPrivilege}, "pg_logical_emit_message": {class: ClassPrivilege},
	"pg_replication_origin_create": {class: ClassPrivilege}, "pg_log_backend_memory_contexts": {class: ClassPrivilege},
	"pg_stat_reset": {class: ClassPrivilege}, "pg_stat_reset_shared": {class: ClassPrivilege},
	"pg_stat_reset_single_table_counters": {class: ClassPrivilege}, "pg_stat_reset_slru": {class: ClassPrivilege},
	"pg_import_system_collations": {class: ClassPrivilege}, "binary_upgrade_set_next_pg_type_oid": {class: ClassPrivilege},
	// messaging, waiting and advisory locks: no rows change
	"pg_notify": {class: ClassUtility}, "pg_sleep": {class: ClassUtility}, "pg_sleep_for": {class: ClassUtility},
	"pg_sleep_until":   {class: ClassUtility},
	"pg_advisory_lock": {class: ClassUtility, locks: true}, "pg_advisory_xact_lock": {class: ClassUtility, locks: true},
	"pg_advisory_lock_shared": {class: ClassUtility, locks: true}, "pg_advisory_xact_lock_shared": {class: ClassUtility, locks: true},
	"pg_try_advisory_lock": {class: ClassUtility, locks: true}, "pg_try_advisory_xact_lock": {class: ClassUtility, locks: true},
	"pg_try_advisory_lock_shared": {class: ClassUtility, locks: true}, "pg_try_advisory_xact_lock_shared": {class: ClassUtility, locks: true},
	"pg_advisory_unlock": {class: ClassUtility, locks: true}, "pg_advisory_unlock_all": {class: ClassUtility, locks: true},
	"pg_advisory_unlock_shared": {class: ClassUtility, locks: true},
	// run SQL text the classifier never sees: anything
	"query_to_xml": {class: ClassUnknown}, "query_to_xmlschema": {class: ClassUnknown},
	"query_to_xml_and_xmlschema": {class: ClassUnknown}, "cursor_to_xml": {class: ClassUnknown},
	"table_to_xml": {class: ClassUnknown}, "table_to_xml_and_xmlschema": {class: ClassUnknown},
	"schema_to_xml": {class: ClassUnknown}, "database_to_xml": {class: ClassUnknown},
	"schema_to_xml_and_xmlschema": {class: ClassUnknown}, "database_to_xml_and_xmlschema": {class: ClassUnknown},
}

// functionEffect says what calling schema.name does; ClassUnknown means
// it may do anything. Only a built-in is trusted: a name spelled with
// pg_catalog, or without a schema while the string has not changed
// search_path (trustPath). Any other schema holds someone's own code, so
// even "evil.lower" or "evil.nextval" is unknown.
func functionEffect(schema, name string, trustPath bool) effect {
	builtin := schema == "pg_catalog" || (schema == "" && trustPath)
	if !builtin {
		return effect{class: ClassUnknown}
	}
	if e, ok := knownFunctions[name]; ok {
		return e
	}
	if safeFunctions[name] {
		return effect{class: ClassSession}
	}
	return effect{class: ClassUnknown}
}

// safeOperators are the built-in operators' symbols. A user-defined
// operator runs its own function, so any other symbol (or an operator
// named with a schema other than pg_catalog) counts as an unknown
// function.
var safeOperators = setOf(
	"=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "^", "|/", "||/", "@", "&", "|", "#", "~",
	"<<", ">>", "||", "~~", "!~~", "~~*", "!~~*", "~", "~*", "!~", "!~*", "@>", "<@", "&&", "->", "->>", "#>",
	"#>>", "?", "?|", "?&", "@?", "@@", "@@@", "#-", "<->", "&<", "&>", "-|-", "<<=", ">>=", "<<|", "|>>",
	"&<|", "|&>", "<^", ">^", "?#", "?-", "?|", "?-|", "?||", "##", "!!", "<%", "%>", "<<%", "%>>", "<<->",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
