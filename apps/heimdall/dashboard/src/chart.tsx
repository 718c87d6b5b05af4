/** A uPlot time-series chart that follows its container's width. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  label: string;
  color: string;
  values: Array<number | null>;
  /** Unit shown in the legend. */
  unit?: string;
  /** A dashed line (a second figure of the same thing, as p99 beside p50). */
  dash?: boolean;
}

interface Props {
  title: string;
  /** Epoch seconds. */
  t: number[];
  series: ChartSeries[];
  height?: number;
  /** Y axis label. */
  yLabel: string;
}

/** Dots only where a series has few values (a line needs two points; a lone one would not show). */
function sparsePoints(u: uPlot, i: number): boolean {
  const values = u.data[i] ?? [];
  let n = 0;
  for (const v of values) if (v != null) n++;
  return n <= 12;
}

export function Chart({ title, t, series, height = 220, yLabel }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: '#333', grid: { stroke: '#e3e3e3' } },
        { stroke: '#333', grid: { stroke: '#e3e3e3' }, label: yLabel, size: 60 },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(s.dash ? { dash: [6, 4] } : {}),
          points: { show: sparsePoints, size: 6, fill: s.color },
          value: (_u: uPlot, v: number | null) => (v == null ? '–' : `${Number(v.toFixed(2))}${s.unit ?? ''}`),
        })),
      ],
    };
    plot.current = new uPlot(opts, [t, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // Rebuilt only when the set of series changes; data updates go through setData.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, height, yLabel]);

  useEffect(() => {
    plot.current?.setData([t, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [t, series]);

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}: chart of the last ${Math.round((t.length > 1 ? t[t.length - 1]! - t[0]! : 0) / 60)} minutes`} />
    </figure>
  );
}
