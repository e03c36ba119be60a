// The type dashboards/l2watch.json must satisfy: Grafana's published dashboard schema (@grafana/schema,
// the classic JSON model that `schemaVersion` dashboards use), made stricter where Grafana's own type is
// loose on purpose (panel options and targets are Record<string, unknown> there, because each panel
// plugin and data source owns its part).
//
// check.sh wraps the JSON in `export const dashboard = {...} satisfies L2watchDashboard;` so literal
// types survive (an imported .json widens "stat" to string) and excess property checks apply.

import type {
  Dashboard,
  DataSourceRef,
  DataTransformerConfig,
  FieldConfig,
  FieldConfigSource,
  GraphFieldConfig,
  Panel,
  RowPanel,
  TableFieldOptions,
  VariableModel,
} from '@grafana/schema';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type { Options as TableOptions } from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type { Options as TimeSeriesOptions } from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

// A JSON file holds an enum's value, never the enum: map TypeScript string enums to the union of their
// values ("background" | ...), recursively, so the JSON can satisfy them. Numeric enums stay: TS 5
// accepts a numeric literal that is one of their members.
type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

// Every panel and query points at the dashboard's data source variable: never a UID of one Grafana.
type PromRef = { type: 'prometheus'; uid: '${datasource}' };

// Grafana types targets as Record<string, unknown>; these are the Prometheus query fields we use.
type PromTarget = {
  datasource: PromRef;
  refId: string;
  expr: string;
  editorMode?: 'code' | 'builder';
  range: boolean;
  instant: boolean;
  format: 'time_series' | 'table' | 'heatmap';
  legendFormat?: string;
  interval?: string;
};

type PanelBase = Omit<Json<Panel>, 'type' | 'options' | 'targets' | 'fieldConfig' | 'datasource' | 'gridPos' | 'id'> & {
  id: number;
  gridPos: Json<NonNullable<Panel['gridPos']>>;
  title: string;
  datasource: PromRef;
  targets: PromTarget[];
};

type Defaults<Custom> = Omit<Json<FieldConfig>, 'custom'> & { custom?: Json<Custom> };
type FieldConfigOf<Custom> = Omit<Json<FieldConfigSource>, 'defaults'> & { defaults: Defaults<Custom> };

type StatPanel = PanelBase & { type: 'stat'; options: Json<StatOptions>; fieldConfig: FieldConfigOf<never> };
type TablePanel = PanelBase & {
  type: 'table';
  options: Json<TableOptions>;
  fieldConfig: FieldConfigOf<Partial<TableFieldOptions>>;
  transformations: Json<DataTransformerConfig>[];
};
type TimeSeriesPanel = PanelBase & {
  type: 'timeseries';
  options: Json<TimeSeriesOptions>;
  fieldConfig: FieldConfigOf<GraphFieldConfig>;
};
type L2watchRow = Omit<Json<RowPanel>, 'panels' | 'id' | 'gridPos'> & {
  type: 'row';
  id: number;
  gridPos: Json<NonNullable<RowPanel['gridPos']>>;
  panels: [];
};

type L2watchVariable = Omit<Json<VariableModel>, 'datasource' | 'type'> &
  (
    | { type: 'datasource'; query: 'prometheus'; datasource?: never }
    // A classic `label_values(selector, label)` string: every Grafana since 7 reads it (the newer
    // editor object differs between versions).
    | { type: 'query'; datasource: PromRef; definition: string; query: `label_values(${string})` }
  );

export type L2watchDashboard = Omit<Json<Dashboard>, 'panels' | 'templating' | 'uid' | 'title' | 'schemaVersion'> & {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Array<StatPanel | TablePanel | TimeSeriesPanel | L2watchRow>;
  templating: { list: L2watchVariable[] };
};

// The stricter type must still be Grafana's: checks, in the generated wrapper, that the dashboard also
// passes as the package's own Dashboard (after the enum mapping above).
export type GrafanaDashboard = Json<Dashboard>;
export type { DataSourceRef };
