// The server's table of job stages and event types (speech2image/jobs/job.py, STAGES and EVENTS),
// given with the page so that the page, the CLI and the tests share one list.

const table = JSON.parse(document.getElementById("page-table").textContent);

export const STAGES = new Map(table.stages.map((stage) => [stage.name, stage]));
export const EVENTS = table.events;
export const FINISHED = new Set(table.stages.filter((stage) => stage.end).map((stage) => stage.name));
