//! [`PostgresMaster`]: a [`Master`] over one Postgres table.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::{Client, NoTls};
use tracing::{debug, warn};

use super::columns::{Column, Kind, quote_identifier};
use crate::error::{Error, Result};
use crate::live_table::{Master, Page};
use crate::rows::{Record, Rows, Value};

/// A [`Master`] over one Postgres table: `list` pages ordered by the id column, and every write
/// one parameterised statement whose `RETURNING` gives back what the database stored (defaults
/// and triggers included).
///
/// Built with [`PostgresMaster::connect`] from a connection URL, the table's name and its id
/// column (unique: a primary key). The columns are read from the catalog once, at connect; a
/// column of a type vlive cannot map is refused then, by name (the type table is in
/// `docs/postgres.md`). Records hold every column, the id column included.
///
/// Values only ever travel as bind parameters (text, cast by Postgres to the column's type);
/// table and column names must be plain identifiers and are quoted. A record field that is not
/// a column, or a value that does not fit its column, is an [`Error::InvalidArgument`] naming
/// the column, before anything is sent.
///
/// Failures of the database come back as [`Error::Master`] with Postgres' error as the source
/// (its SQLSTATE and message). The connection is re-dialled on the next call after it breaks.
#[derive(Clone)]
pub struct PostgresMaster {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where a new connection comes from after the last one broke.
    source: Source,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    table: Table,
}

/// Where a [`PostgresMaster`]'s connections come from.
enum Source {
    /// Dialled by vlive.
    Url(String),
    /// The application's own, e.g. from its pool ([`PostgresMaster::with_connector`]).
    Connector(Connector),
    /// Given once ([`PostgresMaster::with_client`]): nothing to dial again.
    Fixed,
}

/// The application's way to a new connection.
type Connector = Box<
    dyn Fn() -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = std::result::Result<Arc<Client>, BoxError>> + Send,
            >,
        > + Send
        + Sync,
>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A record's fields as `(quoted column, placeholder)` pairs, and the parameters: the id as
/// `$1`, then one per field.
struct Assignments {
    assigned: Vec<(String, String)>,
    params: Vec<Option<String>>,
}

/// The table, as the catalog described it at connect.
#[derive(Debug)]
pub(crate) struct Table {
    /// `"schema"."name"` or `"name"`, quoted.
    pub(crate) quoted: String,
    /// The table as given, for messages.
    pub(crate) name: String,
    pub(crate) columns: Vec<Column>,
    /// Index of the id column in `columns`.
    pub(crate) id: usize,
    /// Every column's select expression, in order.
    select_list: String,
}

impl std::fmt::Debug for PostgresMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("PostgresMaster")
            .field("table", &self.inner.table.name)
            .field("id", &self.inner.table.columns[self.inner.table.id].name)
            .finish_non_exhaustive()
    }
}

impl PostgresMaster {
    /// Connects to `url` (`postgres://user[:password]@host:port/db`; no TLS) and reads the
    /// columns of `table` (`name` or `schema.name`), whose id column is `id_column`.
    pub async fn connect(url: &str, table: &str, id_column: &str) -> Result<PostgresMaster> {
        let client = dial(url).await?;
        Self::build(Source::Url(url.to_owned()), client, table, id_column).await
    }

    /// The same with connections the application provides, e.g. from its own pool (or with
    /// TLS): `connect` is called for the first connection and again whenever the current one
    /// has closed. Queries pipeline on one connection at a time.
    pub async fn with_connector<F, Fut, E>(
        connect: F,
        table: &str,
        id_column: &str,
    ) -> Result<PostgresMaster>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<Arc<Client>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let connector: Connector = Box::new(move || {
            let connecting = connect();
            Box::pin(async move { connecting.await.map_err(Into::into) })
        });
        let client = connector()
            .await
            .map_err(|e| Error::master(ConnectorFailed(e)))?;
        Self::build(Source::Connector(connector), client, table, id_column).await
    }

    /// The same over a connection the application already has (its own pool's, a TLS one):
    /// queries pipeline on it beside the application's. vlive cannot dial it again: once it
    /// closes, every call fails with [`Error::Master`] until a new master is built.
    pub async fn with_client(
        client: Arc<Client>,
        table: &str,
        id_column: &str,
    ) -> Result<PostgresMaster> {
        Self::build(Source::Fixed, client, table, id_column).await
    }

    async fn build(
        source: Source,
        client: Arc<Client>,
        table: &str,
        id_column: &str,
    ) -> Result<PostgresMaster> {
        let table = describe(&client, table, id_column).await?;
        debug!(table = %table.name, columns = table.columns.len(), "postgres master connected");
        Ok(PostgresMaster {
            inner: Arc::new(Inner {
                source,
                client: tokio::sync::Mutex::new(Some(client)),
                table,
            }),
        })
    }

    /// The live client, dialled again if the last one broke.
    async fn client(&self) -> Result<Arc<Client>> {
        let mut current = self.inner.client.lock().await;
        if let Some(client) = current.as_ref()
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        let client = match &self.inner.source {
            Source::Url(url) => dial(url).await?,
            Source::Connector(connect) => connect()
                .await
                .map_err(|e| Error::master(ConnectorFailed(e)))?,
            Source::Fixed => return Err(Error::master(ConnectionClosed)),
        };
        *current = Some(client.clone());
        Ok(client)
    }

    fn column(&self, field: &str) -> Result<&Column> {
        let table = &self.inner.table;
        table
            .columns
            .iter()
            .find(|c| c.name == field)
            .ok_or_else(|| Error::InvalidArgument {
                reason: format!("postgres table {} has no column {field:?}", table.name),
            })
    }

    /// The id as a parameter of the id column; `None` when it cannot be one (a get then finds
    /// nothing).
    fn id_parameter(&self, id: &str) -> Option<String> {
        let column = &self.inner.table.columns[self.inner.table.id];
        match column.kind {
            Kind::Integer if id.parse::<i64>().is_err() => None,
            _ => Some(id.to_owned()),
        }
    }

    fn id_required(&self, id: &str) -> Result<String> {
        self.id_parameter(id).ok_or_else(|| Error::InvalidArgument {
            reason: format!(
                "{id:?} is not a valid id for postgres table {} (its id column is an integer)",
                self.inner.table.name
            ),
        })
    }

    /// Runs `sql` with text `params`, returning the rows as records.
    async fn query(&self, sql: &str, params: &[Option<String>]) -> Result<Vec<(String, Record)>> {
        let client = self.client().await?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let rows = client.query(sql, &refs).await.map_err(database_error)?;
        rows.iter().map(|row| self.record(row)).collect()
    }

    fn record(&self, row: &tokio_postgres::Row) -> Result<(String, Record)> {
        let table = &self.inner.table;
        let mut record = Record::with_capacity(table.columns.len());
        let mut id = String::new();
        for (n, column) in table.columns.iter().enumerate() {
            let text: Option<&str> = row.try_get(n).map_err(database_error)?;
            if n == table.id {
                id = text.unwrap_or_default().to_owned();
            }
            record.insert(column.name.clone(), column.decode(text)?);
        }
        Ok((id, record))
    }

    /// The write of `record` to row `id`; refuses an id the id column cannot hold, a field that
    /// is not a column, a value that does not fit, and an id field other than `id`.
    fn assignments(&self, id: &str, record: &Record) -> Result<Assignments> {
        let table = &self.inner.table;
        let mut assigned = Vec::new();
        let mut params = vec![Some(self.id_required(id)?)];
        for (field, value) in record {
            let column = self.column(field)?;
            if column.name == table.columns[table.id].name {
                let same = matches!(value, Value::Text(t) if t == id)
                    || matches!(value, Value::Integer(n) if i128::from(*n).to_string() == id);
                if !same {
                    return Err(Error::InvalidArgument {
                        reason: format!(
                            "record for id {id:?} of postgres table {} carries another id in \
                             {field:?}",
                            table.name
                        ),
                    });
                }
                continue;
            }
            params.push(column.encode(value)?);
            let placeholder = format!("${}::text::{}", params.len(), column.sql_type);
            assigned.push((column.quoted.clone(), placeholder));
        }
        Ok(Assignments { assigned, params })
    }

    fn id_column(&self) -> &Column {
        &self.inner.table.columns[self.inner.table.id]
    }

    fn one(&self, id: &str, rows: Vec<(String, Record)>) -> Result<Record> {
        rows.into_iter()
            .next()
            .map(|(_, record)| record)
            .ok_or_else(|| no_such_row(&self.inner.table.name, id))
    }
}

#[async_trait]
impl Master for PostgresMaster {
    async fn list(&self, page: Page) -> Result<Rows> {
        let table = &self.inner.table;
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {} LIMIT $1::text::bigint OFFSET $2::text::bigint",
            table.select_list,
            table.quoted,
            self.id_column().quoted
        );
        let params = [
            Some(page.per_page.to_string()),
            Some(page.offset().to_string()),
        ];
        Ok(self.query(&sql, &params).await?.into_iter().collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Record>> {
        let Some(id_param) = self.id_parameter(id) else {
            return Ok(None);
        };
        let table = &self.inner.table;
        let id_column = self.id_column();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = $1::text::{}",
            table.select_list, table.quoted, id_column.quoted, id_column.sql_type
        );
        match self.query(&sql, &[Some(id_param)]).await {
            Ok(rows) => Ok(rows.into_iter().next().map(|(_, record)| record)),
            // An id the id column cannot hold (a malformed uuid, an integer out of range):
            // no such row.
            Err(Error::Master(source)) if is_bad_input(source.as_ref()) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn insert(&self, id: &str, record: Record) -> Result<Record> {
        let Assignments { assigned, params } = self.assignments(id, &record)?;
        let id_column = self.id_column();
        let mut columns = vec![id_column.quoted.clone()];
        let mut values = vec![format!("$1::text::{}", id_column.sql_type)];
        for (column, placeholder) in assigned {
            columns.push(column);
            values.push(placeholder);
        }
        let table = &self.inner.table;
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
            table.quoted,
            columns.join(", "),
            values.join(", "),
            table.select_list
        );
        let rows = self.query(&sql, &params).await?;
        self.one(id, rows)
    }

    async fn replace(&self, id: &str, record: Record) -> Result<Record> {
        let Assignments { assigned, params } = self.assignments(id, &record)?;
        let table = &self.inner.table;
        // Every column the record does not name goes back to its default, as a whole-row
        // replacement must.
        let mut sets: Vec<String> = assigned
            .iter()
            .map(|(column, placeholder)| format!("{column} = {placeholder}"))
            .collect();
        for (n, column) in table.columns.iter().enumerate() {
            if n != table.id && !assigned.iter().any(|(quoted, _)| *quoted == column.quoted) {
                sets.push(format!("{} = DEFAULT", column.quoted));
            }
        }
        if sets.is_empty() {
            // A table of only its id: still fail for a missing row, and return it.
            sets.push(format!("{0} = {0}", self.id_column().quoted));
        }
        self.update(id, &sets, &params).await
    }

    async fn patch(&self, id: &str, partial: Record) -> Result<Record> {
        let Assignments { assigned, params } = self.assignments(id, &partial)?;
        let mut sets: Vec<String> = assigned
            .iter()
            .map(|(column, placeholder)| format!("{column} = {placeholder}"))
            .collect();
        if sets.is_empty() {
            // Nothing to change: still fail for a missing row, and return the stored one.
            let id_column = self.id_column();
            sets.push(format!("{0} = {0}", id_column.quoted));
        }
        self.update(id, &sets, &params).await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id_param = self.id_required(id)?;
        let id_column = self.id_column();
        let sql = format!(
            "DELETE FROM {} WHERE {} = $1::text::{}",
            self.inner.table.quoted, id_column.quoted, id_column.sql_type
        );
        let client = self.client().await?;
        let deleted = client
            .execute(&sql, &[&id_param])
            .await
            .map_err(database_error)?;
        if deleted == 0 {
            return Err(no_such_row(&self.inner.table.name, id));
        }
        Ok(())
    }

    async fn delete_all(&self) -> Result<()> {
        // DELETE, not TRUNCATE: row triggers (and the change feed's) see every row go.
        let sql = format!("DELETE FROM {}", self.inner.table.quoted);
        let client = self.client().await?;
        client.execute(&sql, &[]).await.map_err(database_error)?;
        Ok(())
    }
}

impl PostgresMaster {
    async fn update(&self, id: &str, sets: &[String], params: &[Option<String>]) -> Result<Record> {
        let table = &self.inner.table;
        let id_column = self.id_column();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = $1::text::{} RETURNING {}",
            table.quoted,
            sets.join(", "),
            id_column.quoted,
            id_column.sql_type,
            table.select_list
        );
        let rows = self.query(&sql, params).await?;
        self.one(id, rows)
    }
}

/// A new client for `url`; its connection runs on a task of its own.
async fn dial(url: &str) -> Result<Arc<Client>> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|_| Error::InvalidConfig {
        reason: "the postgres URL does not parse (it is not repeated here: it may hold a \
                 password)"
            .into(),
    })?;
    // Fixed output formats, whatever the database's defaults: dates and intervals as the
    // type table says, floats with every digit (the default before Postgres 12 rounds).
    config.options("-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=3");
    let (client, connection) = config.connect(NoTls).await.map_err(database_error)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            warn!(%error, "postgres connection ended");
        }
    });
    Ok(Arc::new(client))
}

/// Reads `table`'s columns from the catalog.
async fn describe(client: &Client, table: &str, id_column: &str) -> Result<Table> {
    let quoted = match table.split_once('.') {
        Some((schema, name)) => format!(
            "{}.{}",
            quote_identifier(schema, "schema")?,
            quote_identifier(name, "table")?
        ),
        None => quote_identifier(table, "table")?,
    };
    quote_identifier(id_column, "id column")?;
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, NULL), t.typname::text, \
             t.typcategory::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&quoted],
        )
        .await
        .map_err(database_error)?;
    if rows.is_empty() {
        return Err(Error::InvalidConfig {
            reason: format!("postgres table {table:?} does not exist (or has no columns)"),
        });
    }
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.get(0);
        // Cast to the type without its modifier (`character varying`, not `(5)`): an explicit
        // cast to varchar(5) truncates silently, while the assignment to the column checks
        // the length and fails.
        let sql_type: String = row.get(1);
        let shown_type: String = row.get(4);
        let typname: String = row.get(2);
        // Except `character`: without a length it means character(1), so its cast would
        // truncate to one character; `bpchar` is the same type without a limit.
        let sql_type = match typname.as_str() {
            "bpchar" => "bpchar".to_owned(),
            "_bpchar" => "bpchar[]".to_owned(),
            _ => sql_type,
        };
        let category: String = row.get(3);
        let kind = Kind::of(&typname, &category).ok_or_else(|| Error::InvalidConfig {
            reason: format!(
                "postgres table {table:?}, column {name:?}: vlive cannot map its type \
                 {shown_type} (docs/postgres.md lists the types it maps)"
            ),
        })?;
        let quoted = quote_identifier(&name, "column")?;
        columns.push(Column {
            name,
            quoted,
            sql_type,
            kind,
        });
    }
    let id = columns
        .iter()
        .position(|c| c.name == id_column)
        .ok_or_else(|| Error::InvalidConfig {
            reason: format!("postgres table {table:?} has no column {id_column:?}"),
        })?;
    if matches!(
        columns[id].kind,
        Kind::Json | Kind::Array | Kind::Bytes | Kind::Float
    ) {
        return Err(Error::InvalidConfig {
            reason: format!(
                "postgres table {table:?}: id column {id_column:?} is {}; ids must be \
                 integers, text or uuid",
                columns[id].sql_type
            ),
        });
    }
    let select_list = columns
        .iter()
        .map(Column::select_expression)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Table {
        quoted,
        name: table.to_owned(),
        columns,
        id,
        select_list,
    })
}

/// Whether `error` is Postgres refusing a parameter's text for its type (SQLSTATE class 22:
/// invalid text representation, out of range).
fn is_bad_input(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|code| code.code().starts_with("22"))
}

/// The application's connector ([`PostgresMaster::with_connector`]) failed.
#[derive(Debug)]
struct ConnectorFailed(BoxError);

impl std::fmt::Display for ConnectorFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the application's postgres connector failed: {}", self.0)
    }
}

impl std::error::Error for ConnectorFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// The connection given to [`PostgresMaster::with_client`] has closed.
#[derive(Debug)]
struct ConnectionClosed;

impl std::fmt::Display for ConnectionClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the postgres connection given to PostgresMaster::with_client has closed; vlive \
             cannot dial it again",
        )
    }
}

impl std::error::Error for ConnectionClosed {}

/// `error` as an [`Error::Master`], with Postgres' SQLSTATE and message kept in the source.
pub(crate) fn database_error(error: tokio_postgres::Error) -> Error {
    Error::master(error)
}

fn no_such_row(table: &str, id: &str) -> Error {
    #[derive(Debug)]
    struct NoSuchRow(String);
    impl std::fmt::Display for NoSuchRow {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for NoSuchRow {}
    Error::master(NoSuchRow(format!(
        "postgres table {table}: no row with id {id:?}"
    )))
}
