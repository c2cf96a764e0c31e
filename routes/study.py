"""The study routes: hosting capacity (per bus and stochastic), time series and batch studies, run as jobs, and
the jobs themselves."""

from __future__ import annotations

import orjson
from flask import Response, current_app
from flask_openapi3 import OpenAPI

from routes.web import (BEARER, ERROR_RESPONSES, csv_response, grid_route, jobs, json_response,
                        registry, studies_tag, success)
from web.schemas import ErrorResponse
from studies.jobs import Job, StudyError
from studies.plans import PLANS, Plan
from studies.requests import (ScenarioInput, batch_plan, ev_adoption_plan, hosting_capacity_plan,
                              load_hosting_capacity_plan, stochastic_hosting_capacity_plan, time_series_plan)
from web.study_schemas import (BatchBody, EvAdoptionBody, HostingCapacityBody, JobPath, JobResponse, JobResultQuery,
                               JobResultResponse, JobsResponse, LoadHostingCapacityBody, StochasticHostingCapacityBody,
                               StudyQuery, TimeSeriesBody)


def register_study_routes(app: OpenAPI) -> None:
    """Studies read a scenario as it is when they start (its ops and sequence) and never change it."""
    study_responses = {200: JobResponse, 202: JobResponse, 429: ErrorResponse, **ERROR_RESPONSES}

    @grid_route(app, "post", "/studies/hosting_capacity", tags=[studies_tag], security=BEARER,
                responses=study_responses)
    def hosting_capacity(scenario_id: str, body: HostingCapacityBody, query: StudyQuery) -> Response:
        """How much generation each bus takes before a limit is crossed, and which limit: a job (202)."""
        return start_job(hosting_capacity_plan(body, study_input(scenario_id)), query.wait)

    @grid_route(app, "post", "/studies/load_hosting_capacity", tags=[studies_tag], security=BEARER,
                responses=study_responses)
    def load_hosting_capacity(scenario_id: str, body: LoadHostingCapacityBody, query: StudyQuery) -> Response:
        """How much new load (EV chargers, heat pumps) each bus takes before a limit is crossed, and which limit: a
        job (202)."""
        return start_job(load_hosting_capacity_plan(body, study_input(scenario_id)), query.wait)

    @grid_route(app, "post", "/studies/stochastic_hosting_capacity", tags=[studies_tag], security=BEARER,
                responses=study_responses)
    def stochastic_hosting_capacity(scenario_id: str, body: StochasticHostingCapacityBody, query: StudyQuery
                                    ) -> Response:
        """The feeder's hosting-capacity range over random placements of customer PV (EPRI 1026640): a job."""
        return start_job(stochastic_hosting_capacity_plan(body, study_input(scenario_id, customers=True)),
                         query.wait)

    @grid_route(app, "post", "/studies/ev_adoption", tags=[studies_tag], security=BEARER, responses=study_responses)
    def ev_adoption(scenario_id: str, body: EvAdoptionBody, query: StudyQuery) -> Response:
        """The feeder's range of EV charger adoption over random placements at its customers (EPRI's stochastic
        method for new load): a job (202)."""
        return start_job(ev_adoption_plan(body, study_input(scenario_id, customers=True)), query.wait)

    @grid_route(app, "post", "/studies/time_series", tags=[studies_tag], security=BEARER, responses=study_responses)
    def time_series(scenario_id: str, body: TimeSeriesBody, query: StudyQuery) -> Response:
        """The scenario hour by hour under measured load and PV shapes, regulators carrying taps: a job (202)."""
        return start_job(time_series_plan(body, study_input(scenario_id)), query.wait)

    @grid_route(app, "post", "/studies/batch", tags=[studies_tag], security=BEARER, responses=study_responses)
    def batch(scenario_id: str, body: BatchBody, query: StudyQuery) -> Response:
        """Many what-if cases, each a list of changes from the scenario's state, each answered alone: a job."""
        return start_job(batch_plan(body, study_input(scenario_id)), query.wait)

    @app.get("/jobs", tags=[studies_tag], responses={200: JobsResponse})
    def list_jobs() -> Response:
        """Every job still known: running ones and the last finished ones (results not included)."""
        return success(jobs=jobs().list())

    @app.get("/jobs/<job_id>", tags=[studies_tag], responses={200: JobResponse, 404: ErrorResponse})
    def get_job(path: JobPath) -> Response:
        """A job's status and progress, and its result once done."""
        return success(job=jobs().get(path.job_id).describe(with_result=True))

    @app.get("/jobs/<job_id>/result", tags=[studies_tag],
             responses={200: JobResultResponse, 404: ErrorResponse, 409: ErrorResponse})
    def job_result(path: JobPath, query: JobResultQuery) -> Response:
        """A finished job's result; ?format=csv gives its rows (buses, hours, cases, or a stochastic study's
        levels or samples) flattened."""
        job = jobs().get(path.job_id)
        if job.status != "done":
            raise StudyError(409, f"job: {job.id} is {job.status} ({job.progress:.0%} done); the result is there "
                                  f"when its status is done", "job")
        if query.format == "csv":
            return result_csv(job, query.table)
        return success(job=job.id, kind=job.kind, result=job.result)

    @app.delete("/jobs/<job_id>", tags=[studies_tag], security=BEARER,
                responses={200: JobResponse, 404: ErrorResponse, 401: ErrorResponse})
    def cancel_job(path: JobPath) -> Response:
        """Cancel a job: no new work starts, and it is cancelled within a second (a finished job stays as is)."""
        return success(job=jobs().cancel(path.job_id).describe())


def study_input(scenario_id: str, customers: bool = False) -> ScenarioInput:
    """The scenario as the study will read it: its ops, sequence and load set-points now, the feeder's buses, and
    (when asked) its customers with where their PV connects."""
    with registry().engine(scenario_id) as (scenario, circuit):
        return ScenarioInput(registry().served(scenario).settings, scenario.id, scenario.ops(), scenario.sequence,
                             circuit.buses(), [row["id"] for row in circuit.neighbourhoods()],
                             circuit.load_setpoints_kw(), circuit.load_neighbourhoods(),
                             circuit.customers() if customers else None, circuit.generator_refusals(),
                             load_shapes=circuit.load_shapes())


def start_job(plan: Plan, wait_s: float) -> Response:
    """202 with Location, or 200 with the finished job when it ends within ?wait= seconds."""
    job = jobs().submit(plan)
    if wait_s and job.finished.wait(wait_s):
        return success(job=job.describe(with_result=True))
    response = json_response(orjson.dumps({"status": "success", "job": job.describe()}), 202)
    response.headers["Location"] = f"/jobs/{job.id}"
    return response


def result_csv(job: Job, table: str | None) -> Response:
    """A finished job's rows as CSV: its one table, or the named one of a result with several."""
    plan = PLANS[job.kind]
    if table is not None and table not in plan.tables:
        raise StudyError(422, f"table: a {job.kind} result has one table; table is for results with several "
                              f"(stochastic_hosting_capacity, ev_adoption: levels, samples)", "table")
    table = table or (plan.tables[0] if plan.tables else None)
    name = f"{job.kind}-{job.id}{f'-{table}' if table else ''}.csv"
    return csv_response(plan.flat_rows(job.result, table), name, "attachment")
