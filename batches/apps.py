from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from batches.services import batch_item_finished
        from synthesis.jobs.events import on_job_finished

        def item_finished(job) -> None:
            if job.batch_id:  # the last item to end finishes its batch
                batch_item_finished(tenant_id=job.tenant_id, batch_id=job.batch_id)

        on_job_finished(item_finished)
