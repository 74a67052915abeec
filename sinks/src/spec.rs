//! What a [`PartitionWriterExec`](crate::PartitionWriterExec) writes and
//! counts. It travels inside the plan, so it is plain data.

use serde::{Deserialize, Serialize};

/// Which rows a counter sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterRows {
    /// Every row the partition's plan produced.
    All,
    /// Only the rows written to the shard.
    Written,
}

/// Rows counted by the values of some columns: one count per distinct
/// tuple of values (NULL is a value of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: CounterRows,
}

/// The writer's instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSpec {
    /// The version folder the shards go to (a URL ending without `/`).
    pub folder_url: String,
    /// The columns written, in this order, taken by name from the plan.
    pub columns: Vec<String>,
    /// Write only the rows where this column is NULL (a reject reason, say);
    /// every row when `None`.
    pub keep_where_null: Option<String>,
    pub counters: Vec<Counter>,
}

impl WriteSpec {
    /// Writes `columns` of every row into `folder_url`, counting nothing.
    pub fn new<S: AsRef<str>>(
        folder_url: impl Into<String>,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            folder_url: folder_url.into(),
            columns: columns
                .into_iter()
                .map(|c| c.as_ref().to_string())
                .collect(),
            keep_where_null: None,
            counters: Vec::new(),
        }
    }

    /// Writes only the rows where `column` is NULL.
    pub fn keep_where_null(mut self, column: &str) -> Self {
        self.keep_where_null = Some(column.to_string());
        self
    }

    /// Adds a counter named `name` over `columns`.
    pub fn count(mut self, name: &str, columns: &[&str], rows: CounterRows) -> Self {
        self.counters.push(Counter {
            name: name.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        });
        self
    }

    /// Every plan column the writer reads, each once.
    pub fn input_columns(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        let all = self
            .columns
            .iter()
            .chain(self.keep_where_null.iter())
            .chain(self.counters.iter().flat_map(|c| c.columns.iter()));
        for name in all {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    }
}
