//! The story's closing table: one line per step.

use crate::demo::Timed;
use crate::show::{ms, print_table};

/// One line of the closing summary.
pub struct Step {
    pub step: &'static str,
    pub what: String,
    pub time: String,
    pub master_calls: u64,
}

impl Step {
    /// The line of a step that was one timed read through the table.
    pub fn read<T>(step: &'static str, what: String, read: &Timed<T>) -> Self {
        Step {
            step,
            what,
            time: ms(read.elapsed),
            master_calls: read.master_calls,
        }
    }
}

/// The steps so far, in order.
#[derive(Default)]
pub struct Summary(Vec<Step>);

impl Summary {
    pub fn push(&mut self, step: Step) {
        self.0.push(step);
    }

    pub fn print(self) {
        println!();
        println!("Summary");
        let mut lines = vec![vec![
            "step".to_string(),
            "what happened".to_string(),
            "time".to_string(),
            "master calls".to_string(),
        ]];
        for step in self.0 {
            lines.push(vec![
                step.step.into(),
                step.what,
                step.time,
                step.master_calls.to_string(),
            ]);
        }
        print_table(&lines);
    }
}
