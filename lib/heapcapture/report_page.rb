# frozen_string_literal: true

require "json"

module HeapCapture
  # `heapcapture report DUMP --html FILE` (and `diff OLD NEW [LATER] --html FILE`, and a capture with
  # report_html): the report as one HTML file that needs nothing else (its scripts, styles and data
  # inline; no request of any kind), so it opens from disk, an e-mail or a presigned URL. The
  # drawing library (d3-flame-graph and the d3 modules it needs) is vendored under
  # report_page/vendor (VERSIONS, LICENSES.md; `rake vendor:report_page` refreshes it); the page's
  # own script and style are report_page/page.js and page.css. The data is the report's summary
  # (Summary.of_file with tree:) or diff (Summary.diff_of_files), cut to what the page shows.
  module ReportPage
    DIR = File.join(__dir__, "report_page")
    # A capture's page beside its dump (report_html): "<dump key without .ndjson(.gz)>.report.html".
    SUFFIX = ".report.html"
    # What the page shows of each list: the top of it (the summary is already cut to --top).
    LISTS = %w[types sites classes retainers retained_by_class retained_by_site suspects duplicate_strings].freeze
    TOTALS = %w[objects memsize raw_bytes lines invalid_lines retention retained garbage own missing_references
                root_records site_count].freeze
    # What the diff page shows: the growth's totals and lists (heap_retention.h's growth JSON).
    DIFF = %w[objects memsize raw_bytes lines invalid_lines retention growth types sites classes holder holders
              sites_by_count site_count caveat].freeze

    module_function

    # The page for summary (a report's, with its "tree" when the retention analysis was made) of
    # the dump called name. error: why there is no summary (the page says so instead).
    def html(summary, name, error: nil)
      data = { "kind" => "report", "name" => name, "error" => error, "made_by" => "heapcapture #{VERSION}" }
      data.merge!(summary.slice(*TOTALS, *LISTS, "tree")) if summary
      page(data, "heapcapture report: #{name}", "What holds the memory")
    end

    # The page for diff (Summary.diff_of_files, with "caveat" when there is one) of the dumps names
    # (OLD, NEW and maybe LATER). error: why there is no diff (the page says so instead).
    def diff_html(diff, names, error: nil)
      data = { "kind" => "diff", "name" => names.join(" \u2192 "), "names" => names, "error" => error,
               "made_by" => "heapcapture #{VERSION}" }
      data.merge!(diff.slice(*DIFF)) if diff
      page(data, "heapcapture diff: #{names.join(' ')}", "What grew, and what holds it")
    end

    # The page; the drawing library (134 KB) only in a page with a dominator tree to draw.
    def page(data, title, heading)
      drawing = data["tree"]
      <<~HTML
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
        <title>#{escape(title)}</title>
        #{"<style>#{asset('vendor/flamegraph.css')}</style>" if drawing}
        <style>#{asset('page.css')}</style>
        </head>
        <body>
        <header><h1>#{escape(heading)}</h1><p id="dump-name"></p></header>
        <main id="report"></main>
        <script type="application/json" id="heap-data">#{script_json(data)}</script>
        #{"<script>#{asset('vendor/flamegraph.js')}</script>" if drawing}
        <script>#{asset('page.js')}</script>
        </body>
        </html>
      HTML
    end

    # Stores the page of a capture's summary (with its "tree" when the retention analysis was made)
    # beside its dump, as Summary.key_for(dump_key, SUFFIX), encrypted as the summary is. => the
    # stored location.
    def store(summary, destination, dump_key, tmpdir, encrypt_to: nil)
      name = File.basename(dump_key)
      Destination.store_text(html(summary, name), destination, Summary.key_for(dump_key, SUFFIX), tmpdir, SUFFIX,
                             encrypt_to: encrypt_to)
    end

    # A file of the page's, as it is inlined (a </script or <!-- in it would end or hide the tag:
    # refused, for the vendored files a refresh may change).
    def asset(path)
      text = File.read(File.join(DIR, path), encoding: Encoding::UTF_8)
      raise Error, "#{path} holds </script or <!--: it cannot be inlined" if text.match?(%r{</script|<!--}i)

      text
    end

    # JSON inside a script element: every < escaped (it only occurs in strings), so no text in the
    # data can end the element.
    def script_json(data)
      JSON.generate(data).gsub("<", "\\u003c")
    end

    def escape(text)
      text.to_s.gsub("&", "&amp;").gsub("<", "&lt;").gsub(">", "&gt;").gsub('"', "&quot;")
    end
  end
end
