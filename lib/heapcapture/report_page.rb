# frozen_string_literal: true

require "json"

module HeapCapture
  # `heapcapture report DUMP --html FILE`: the report as one HTML file that needs nothing else (its
  # scripts, styles and data inline; no request of any kind), so it opens from disk, an e-mail or a
  # presigned URL. The drawing library (d3-flame-graph and the d3 modules it needs) is vendored
  # under report_page/vendor (VERSIONS, LICENSES.md; `rake vendor:report_page` refreshes it); the
  # page's own script and style are report_page/page.js and page.css. The data is the report's
  # summary (Summary.of_file with tree:), cut to what the page shows.
  module ReportPage
    DIR = File.join(__dir__, "report_page")
    # What the page shows of each list: the top of it (the summary is already cut to --top).
    LISTS = %w[types sites classes retainers retained_by_class retained_by_site suspects duplicate_strings].freeze
    TOTALS = %w[objects memsize raw_bytes lines invalid_lines retention retained garbage own missing_references
                root_records site_count].freeze

    module_function

    # The page for summary (a report's, with its "tree" when the retention analysis was made) of
    # the dump called name. error: why there is no summary (the page says so instead).
    def html(summary, name, error: nil)
      data = { "name" => name, "error" => error, "made_by" => "heapcapture #{VERSION}" }
      data.merge!(summary.slice(*TOTALS, *LISTS, "tree")) if summary
      <<~HTML
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
        <title>#{escape("heapcapture report: #{name}")}</title>
        <style>#{asset('vendor/flamegraph.css')}</style>
        <style>#{asset('page.css')}</style>
        </head>
        <body>
        <header><h1>What holds the memory</h1><p id="dump-name"></p></header>
        <main id="report"></main>
        <script type="application/json" id="heap-data">#{script_json(data)}</script>
        <script>#{asset('vendor/flamegraph.js')}</script>
        <script>#{asset('page.js')}</script>
        </body>
        </html>
      HTML
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
