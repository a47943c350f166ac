/** @odoo-module **/
/*
 * Progress bar of the campaign's Status tab that refreshes the record every
 * two seconds while the campaign is sending, so the counts go up live without
 * the user pressing anything. It stops as soon as the state leaves 'sending'
 * or the user has unsaved changes.
 */
import { useEffect } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { ProgressBarField, progressBarField } from "@web/views/fields/progress_bar/progress_bar_field";

const REFRESH_MS = 2000;

export class CampaignLiveProgressField extends ProgressBarField {
    setup() {
        super.setup();
        useEffect(
            (state) => {
                if (state !== "sending") {
                    return;
                }
                const timer = setInterval(() => {
                    if (!this.props.record.dirty) {
                        this.props.record.load();
                    }
                }, REFRESH_MS);
                return () => clearInterval(timer);
            },
            () => [this.props.record.data.state]
        );
    }
}

registry.category("fields").add("xrm_live_progress", {
    ...progressBarField,
    component: CampaignLiveProgressField,
});
