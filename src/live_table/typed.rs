//! Typed reads and writes (feature `serde`): the same calls as `get`, `list`, `insert`, …,
//! with the rows read as, or written from, any serde type. Errors name the row and the field.

use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{LiveTable, Page};
use crate::error::Result;
use crate::rows::Record;
use crate::typed_rows::{from_record_of, to_record_of};

impl LiveTable {
    /// [`get`](LiveTable::get), the row read as a `T` (see [`from_record`](crate::from_record)
    /// for how).
    ///
    /// # Errors
    ///
    /// As [`get`](LiveTable::get), and [`Error::RowShape`](crate::Error::RowShape) naming the
    /// row and the field when the row does not fit `T`.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use vlive::{Master, Page, Record, Rows};
    /// # #[derive(Default)]
    /// # struct MemMaster(Mutex<Rows>);
    /// # #[async_trait::async_trait]
    /// # impl Master for MemMaster {
    /// #     async fn list(&self, _page: Page) -> vlive::Result<Rows> {
    /// #         Ok(self.0.lock().unwrap().clone())
    /// #     }
    /// #     async fn get(&self, id: &str) -> vlive::Result<Option<Record>> {
    /// #         Ok(self.0.lock().unwrap().get(id).cloned())
    /// #     }
    /// #     async fn insert(&self, id: &str, record: Record) -> vlive::Result<Record> {
    /// #         self.0.lock().unwrap().insert(id.into(), record.clone());
    /// #         Ok(record)
    /// #     }
    /// #     async fn replace(&self, id: &str, r: Record) -> vlive::Result<Record> {
    /// #         self.insert(id, r).await
    /// #     }
    /// #     async fn patch(&self, id: &str, partial: Record) -> vlive::Result<Record> {
    /// #         let mut rows = self.0.lock().unwrap();
    /// #         let row = rows.entry(id.into()).or_default();
    /// #         row.extend(partial);
    /// #         Ok(row.clone())
    /// #     }
    /// #     async fn delete(&self, id: &str) -> vlive::Result<()> {
    /// #         Ok(drop(self.0.lock().unwrap().shift_remove(id)))
    /// #     }
    /// #     async fn delete_all(&self) -> vlive::Result<()> {
    /// #         Ok(self.0.lock().unwrap().clear())
    /// #     }
    /// # }
    /// use serde::{Deserialize, Serialize};
    /// use vlive::{LiveTable, MemCache};
    ///
    /// #[derive(Serialize, Deserialize, Debug, PartialEq)]
    /// struct Client {
    ///     name: String,
    ///     visits: u32,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> vlive::Result<()> {
    /// let master = Arc::new(MemMaster::default()); // any `impl Master`
    /// let clients = LiveTable::new(master, "clients", Arc::new(MemCache::new()))?;
    ///
    /// clients.insert_as("1", &Client { name: "Ada".into(), visits: 3 }).await?;
    /// let ada: Option<Client> = clients.get_as("1").await?;
    /// assert_eq!(ada, Some(Client { name: "Ada".into(), visits: 3 }));
    ///
    /// // A row that does not fit names its id and the field.
    /// clients.insert("2", Record::from([("name".into(), vlive::Value::Integer(7.into()))])).await?;
    /// let error = clients.get_as::<Client>("2").await.unwrap_err();
    /// assert_eq!(error.to_string(), "row 2, field `name`: expected text, found integer");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_as<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>> {
        match self.get(id).await? {
            Some(row) => from_record_of(id, &row).map(Some),
            None => Ok(None),
        }
    }

    /// [`list`](LiveTable::list), every row read as a `T`, by id, in the master's order.
    ///
    /// # Errors
    ///
    /// As [`list`](LiveTable::list), and [`Error::RowShape`](crate::Error::RowShape) naming the
    /// row and the field for the first row that does not fit `T`.
    pub async fn list_as<T: DeserializeOwned>(&self, page: Page) -> Result<IndexMap<String, T>> {
        crate::typed_rows::from_rows(&*self.list(page).await?)
    }

    /// [`insert`](LiveTable::insert) of `value` as a record (see
    /// [`to_record`](crate::to_record)); returns what the write target stored.
    ///
    /// # Errors
    ///
    /// As [`insert`](LiveTable::insert), and [`Error::RowShape`](crate::Error::RowShape) naming
    /// the row and the field when `value` does not serialize to a record; nothing is written
    /// then.
    pub async fn insert_as<T: Serialize + ?Sized>(&self, id: &str, value: &T) -> Result<Record> {
        self.insert(id, to_record_of(id, value)?).await
    }

    /// [`replace`](LiveTable::replace) with `value` as a record; returns what the write target
    /// stored.
    ///
    /// # Errors
    ///
    /// As [`insert_as`](LiveTable::insert_as).
    pub async fn replace_as<T: Serialize + ?Sized>(&self, id: &str, value: &T) -> Result<Record> {
        self.replace(id, to_record_of(id, value)?).await
    }

    /// [`patch`](LiveTable::patch) with the fields `partial` serializes to; returns the whole
    /// record the write target stored.
    ///
    /// `partial` is any `Serialize` type: a struct of `Option` fields marked
    /// `#[serde(skip_serializing_if = "Option::is_none")]` sets only the fields that are
    /// `Some` (a `None` field not skipped is written as `Null`, clearing the field).
    ///
    /// # Errors
    ///
    /// As [`insert_as`](LiveTable::insert_as).
    pub async fn patch_as<T: Serialize + ?Sized>(&self, id: &str, partial: &T) -> Result<Record> {
        self.patch(id, to_record_of(id, partial)?).await
    }
}
