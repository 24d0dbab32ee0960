//! How build events look: a bar per image on a terminal, plain lines elsewhere.

use crate::build::BuildEvent;

use super::Printer;

pub struct BuildView {
    printer: Printer,
}

impl BuildView {
    pub fn new(printer: &Printer) -> Self {
        BuildView {
            printer: printer.clone(),
        }
    }

    pub fn handle(&mut self, event: BuildEvent) {
        match event {
            BuildEvent::Reused { service, image } => {
                self.printer
                    .info(&format!("build {service}: `{image}` is up to date"));
            }
            BuildEvent::Started { service, image } => {
                self.printer.info(&format!("build {service}: `{image}`"));
            }
            BuildEvent::Step {
                service,
                step,
                total,
                instruction,
            } => {
                self.printer.verbose(&format!(
                    "build {service}: step {step}/{total}: {instruction}"
                ));
            }
            BuildEvent::Output { service, line } => {
                self.printer.verbose(&format!("build {service}: {line}"));
            }
            BuildEvent::Finished {
                service,
                image,
                elapsed,
            } => {
                self.printer.info(&format!(
                    "build {service}: built `{image}` in {:.1}s",
                    elapsed.as_secs_f64()
                ));
            }
            BuildEvent::Failed { service } => {
                self.printer.info(&format!("build {service}: failed"));
            }
        }
    }
}
