//! `WriteTable`: a stage's plan as a table whose scan writes it. Reading
//! the table runs the plan under [`PartitionWriterExec`] and yields the
//! summary rows; the plan travels to the scheduler inside the table (see
//! [`SinksNodes`](crate::SinksNodes)), so it is planned and
//! split into tasks there like any other query.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::exec::{project_schema, PartitionWriterExec};
use crate::spec::WriteSpec;
use crate::summary::summary_schema;

#[derive(Debug, Clone)]
pub struct WriteTable {
    plan: LogicalPlan,
    spec: WriteSpec,
}

impl WriteTable {
    /// Checks that the plan has every column the spec reads.
    pub fn try_new(plan: LogicalPlan, spec: WriteSpec) -> Result<Self> {
        let schema = plan.schema();
        for name in spec.input_columns() {
            if !schema.has_column_with_unqualified_name(name) {
                return Err(DataFusionError::Plan(format!(
                    "the plan written to {} lacks column '{name}'",
                    spec.folder_url
                )));
            }
        }
        Ok(Self { plan, spec })
    }

    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    pub fn spec(&self) -> &WriteSpec {
        &self.spec
    }

    /// The schema of the shards.
    pub fn written_schema(&self) -> Result<SchemaRef> {
        let schema: SchemaRef = Arc::new(self.plan.schema().as_arrow().clone());
        project_schema(&schema, &self.spec.columns)
    }
}

#[async_trait]
impl TableProvider for WriteTable {
    fn schema(&self) -> SchemaRef {
        summary_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = state.create_physical_plan(&self.plan).await?;
        let plan: Arc<dyn ExecutionPlan> =
            Arc::new(PartitionWriterExec::new(input, self.spec.clone()));
        let schema = summary_schema();
        match projection {
            Some(columns) if *columns != (0..schema.fields().len()).collect::<Vec<_>>() => {
                let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = columns
                    .iter()
                    .map(|&i| {
                        let name = schema.field(i).name().clone();
                        (
                            Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                            name,
                        )
                    })
                    .collect();
                Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
            }
            _ => Ok(plan),
        }
    }
}
