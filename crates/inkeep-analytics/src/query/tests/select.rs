//! Selections, groupings, sort keys and the columns they name.

use super::*;

#[test]
fn aggregation_selections_with_every_function() -> TestResult {
    let functions = [
        (AggregationFunction::Sum, "sum"),
        (AggregationFunction::Count, "count"),
        (AggregationFunction::CountDistinct, "countDistinct"),
        (AggregationFunction::Avg, "avg"),
        (AggregationFunction::Min, "min"),
        (AggregationFunction::Max, "max"),
    ];
    let names: Vec<&str> = functions.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, AggregationFunction::KNOWN);
    for (function, name) in functions {
        let body = conversations()
            .select(Selection::aggregate(function.clone(), C::UserMessageCount))
            .select(Selection::aggregate(
                function.clone(),
                Field::properties(["seats"]),
            ))
            .select(Selection::aggregate_rows(function))
            .build();
        round_trip(
            &body,
            json!({"select": [
                {"type": "aggregation", "aggregation": name, "field": "userMessageCount"},
                {"type": "aggregation", "aggregation": name, "field": "properties", "path": ["seats"]},
                {"type": "aggregation", "aggregation": name}
            ]}),
        )?;
    }
    round_trip(
        &events().select(Selection::count()).build(),
        json!({"select": [{"type": "aggregation", "aggregation": "count"}]}),
    )
}

#[test]
fn time_selections_with_every_unit() -> TestResult {
    let units = [
        (TimeUnit::Hour, "hour"),
        (TimeUnit::Day, "day"),
        (TimeUnit::Week, "week"),
        (TimeUnit::Month, "month"),
    ];
    let names: Vec<&str> = units.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, TimeUnit::KNOWN);
    for (unit, name) in units {
        let body = events()
            .select(Selection::time_of(E::CreatedAt, unit.clone()))
            .select(Selection::time(unit))
            .build();
        round_trip(
            &body,
            json!({"select": [
                {"type": "time", "timeUnit": name, "field": "createdAt"},
                {"type": "time", "timeUnit": name}
            ]}),
        )?;
    }
    Ok(())
}

#[test]
fn field_selections_with_path_and_mode() -> TestResult {
    assert_eq!(FieldMode::KNOWN, ["unpack", "json"]);
    let body = feedback()
        .select(FeedbackViewField::Type)
        .select(Selection::field(FeedbackViewField::Reasons))
        .select(Selection::field(Field::user_properties(["userId"])))
        .select(Selection::field_as(
            FeedbackViewField::Properties,
            FieldMode::Unpack,
        ))
        .select(Selection::field_as(
            Field::properties(["context", "page"]),
            FieldMode::Json,
        ))
        .select(Field::properties(["source"]))
        .build();
    round_trip(
        &body,
        json!({"select": [
            {"type": "field", "field": "type"},
            {"type": "field", "field": "reasons"},
            {"type": "field", "field": "userProperties", "path": ["userId"]},
            {"type": "field", "field": "properties", "mode": "unpack"},
            {"type": "field", "field": "properties", "path": ["context", "page"], "mode": "json"},
            {"type": "field", "field": "properties", "path": ["source"]}
        ]}),
    )
}

#[test]
fn group_by_with_path_and_include_in_select() -> TestResult {
    let body = conversations()
        .select(Selection::count())
        .group_by(C::Type)
        .group_by(GroupBy::new(Field::properties(["plan"])).include_in_select(true))
        .group_by(GroupBy::new(C::ProjectId).include_in_select(false))
        .group_by(Field::user_properties(["userType"]))
        .build();
    round_trip(
        &body,
        json!({
            "select": [{"type": "aggregation", "aggregation": "count"}],
            "groupBy": [
                {"field": "type"},
                {"field": "properties", "path": ["plan"], "includeInSelect": true},
                {"field": "projectId", "includeInSelect": false},
                {"field": "userProperties", "path": ["userType"]}
            ]
        }),
    )
}

#[test]
fn order_by_fields_time_buckets_and_aggregates() -> TestResult {
    let body = events()
        .order_by(OrderBy::asc(E::CreatedAt))
        .order_by(OrderBy::desc(E::EventType))
        .order_by(Column::time_bucket(E::CreatedAt, TimeUnit::Day).desc())
        .order_by(Column::time_bucket(E::CreatedAt, TimeUnit::Month).asc())
        .order_by(Column::aggregate(AggregationFunction::Count, E::Id).desc())
        .order_by(OrderBy::new(
            Column::aggregate(AggregationFunction::Sum, Field::properties(["userId"])),
            SortDirection::Asc,
        ))
        .order_by(Column::aggregate_rows(AggregationFunction::Count).desc())
        .order_by(Column::raw("avg_latency").asc())
        .build();
    round_trip(
        &body,
        json!({"orderBy": [
            {"field": "createdAt", "direction": "asc"},
            {"field": "eventType", "direction": "desc"},
            {"field": "createdAt_day", "direction": "desc"},
            {"field": "createdAt_month", "direction": "asc"},
            {"field": "count_id", "direction": "desc"},
            {"field": "sum_properties.userId", "direction": "asc"},
            {"field": "count", "direction": "desc"},
            {"field": "avg_latency", "direction": "asc"}
        ]}),
    )
}

#[test]
fn column_names() {
    assert_eq!(
        Column::field(C::UserMessageCount).as_str(),
        "userMessageCount"
    );
    assert_eq!(
        Column::time_bucket(S::FirstMessageTime, TimeUnit::Hour).to_string(),
        "firstMessageTime_hour"
    );
    assert_eq!(
        Column::aggregate(
            AggregationFunction::CountDistinct,
            FeedbackViewField::MessageId
        )
        .as_ref(),
        "countDistinct_messageId"
    );
    assert_eq!(
        Column::aggregate(
            AggregationFunction::Max,
            Field::<EventsView>::properties(["a", "b"])
        )
        .as_str(),
        "max_properties.a.b"
    );
    assert_eq!(
        Column::<EventsView>::from(E::SearchQuery).as_str(),
        "searchQuery"
    );
}

#[test]
fn each_selection_names_the_column_it_adds() -> TestResult {
    let cases: Vec<(Selection<ConversationsView>, &str)> = vec![
        (Selection::field(C::Type), "type"),
        (
            Selection::field(Field::properties(["plan", "tier"])),
            "properties.plan.tier",
        ),
        (
            Selection::field_as(C::UserProperties, FieldMode::Json),
            "userProperties",
        ),
        (
            Selection::aggregate(AggregationFunction::Count, C::Id),
            "count_id",
        ),
        (
            Selection::aggregate(AggregationFunction::Count, Field::properties(["plan"])),
            "count_properties.plan",
        ),
        (Selection::count(), "count"),
        (Selection::aggregate_rows(AggregationFunction::Max), "max"),
        (Selection::time(TimeUnit::Month), "firstMessageTime_month"),
        (
            Selection::time_of(C::FirstMessageTime, TimeUnit::Day),
            "firstMessageTime_day",
        ),
    ];
    for (selection, expected) in cases {
        assert_eq!(
            selection
                .column()
                .map(|column| column.to_string())
                .as_deref(),
            Some(expected),
            "{selection:?}"
        );
    }
    assert_eq!(
        Selection::<EventsView>::time(TimeUnit::Day).column(),
        Some(Column::time_bucket(E::CreatedAt, TimeUnit::Day))
    );
    // The column a selection names is the one its aggregate or time bucket spells.
    assert_eq!(
        Selection::<EventsView>::aggregate(AggregationFunction::Sum, Field::properties(["userId"]))
            .column(),
        Some(Column::aggregate(
            AggregationFunction::Sum,
            Field::properties(["userId"])
        ))
    );
    let newer: types::Selection = serde_json::from_value(
        json!({"type": "percentile", "field": "userMessageCount", "p": 0.9}),
    )?;
    assert_eq!(
        Selection::<ConversationsView>::from_generated(newer).column(),
        None
    );
    Ok(())
}
